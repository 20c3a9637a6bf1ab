"""Sweeps users can trust: plan, parent run, per-job status, resume, summary, side-by-side table.

A sweep (`python run.py -m hetero=ownership,region,period`) goes through four places:

1. `SweepCallback.on_multirun_start`, in the parent process before any worker starts:
   claims a sweep directory no other sweep shares, reproduces Hydra's job list
   (`BasicSweeper.split_arguments`), composes and validates every job's spec, builds each
   data cache once, caps the numerical libraries' threads for the workers, creates the
   MLflow store, the experiment and ONE parent run, and writes `sweep.json` (the plan).
2. `run_sweep_job`, in the worker, for every job: records `status/<num>.json` (started,
   then finished / failed / skipped), skips a job whose spec and data already have a
   FINISHED run (unless `force=true`), runs it as a child run named after its overrides,
   and catches its exception: a failed job is recorded (traceback in the job directory,
   its log and an MLflow run with status FAILED) and never stops the others.
3. `finish_sweep`, in the parent at the end of every sweep, also when a worker was
   killed and joblib aborted (`run.py` calls `finish_open_sweeps` after Hydra returns or
   raises): every planned job gets a line in `summary.{csv,md}` with its status and key
   results, jobs that never finished get a KILLED child run, the combined table and the
   coefficient plot are written and logged to the parent run, and the exit code says
   whether anything failed or never finished.
4. `python -m eqexp.compare` rebuilds the combined table and plot from a sweep directory
   or a parent run (see `eqexp.compare`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import socket
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

log = logging.getLogger(__name__)

# conf/hydra/launcher/{ray,submitit_slurm}.yaml carry the plugins' own names, so Hydra validates
# them against the plugins' schemas (welcome: a misspelt key fails) and warns each time that this
# "automatic schema matching" is deprecated. The files are complete without the schemas.
warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name")

PLAN_FILE = "sweep.json"
STATUS_DIR = "status"
FINISHED, FAILED, SKIPPED, STARTED, NEVER = "finished", "failed", "skipped", "started", "never finished"
OK_STATUSES = (FINISHED, SKIPPED)

# Environment variables read by the numerical libraries when they start their thread pools.
# They must be set in the parent before joblib spawns its workers (pyfixest's Rust demeaner
# reads RAYON_NUM_THREADS once, BLAS and OpenMP read theirs when loaded).
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "POLARS_MAX_THREADS",
)
THREADS_ENV = "EQEXP_THREADS_PER_JOB"

# Keys that never change a job's results: left out of its identity (`job_key`).
_KEY_EXCLUDED = ("tracking", "force")
_KEY_EXCLUDED_DATA = ("cache_dir",)


# --- records ----------------------------------------------------------------------------


@dataclass
class JobRecord:
    """What is known about one job of a sweep; `status/<num>.json` holds the latest state."""

    num: int
    label: str  # the overrides that vary across the sweep, e.g. "hetero=region"
    overrides: list[str] = field(default_factory=list)  # all of the job's task overrides
    status: str = "planned"  # planned | started | finished | failed | skipped | never finished
    reason: str = ""  # why it failed, was skipped or never finished
    run_id: str | None = None  # this job's MLflow run (a child of the sweep's parent run)
    reused_run_id: str | None = None  # skipped: the earlier FINISHED run it reuses
    job_key: str | None = None  # hash of the resolved spec (minus tracking/force) and the data fingerprint
    fingerprint: str | None = None
    force: bool = False
    dir: str | None = None
    pid: int | None = None
    host: str | None = None
    started: float | None = None
    ended: float | None = None
    seconds: float | None = None
    analysis: str = "regression"
    treatment: str | None = None
    fixed_effects: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # report.labels, for the combined table
    timings: dict[str, float] = field(default_factory=dict)
    threads: dict[str, str] = field(default_factory=dict)  # thread caps the job ran under

    @classmethod
    def from_dict(cls, data: dict) -> "JobRecord":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _write_json(path: Path, data: Any) -> None:
    """Atomic write: readers (the summary, a concurrent compare) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def write_status(sweep_dir: Path, record: JobRecord) -> None:
    _write_json(Path(sweep_dir) / STATUS_DIR / f"{record.num}.json", dataclasses.asdict(record))


def read_statuses(sweep_dir: Path) -> dict[int, JobRecord]:
    records = {}
    for path in sorted((Path(sweep_dir) / STATUS_DIR).glob("*.json")):
        try:
            record = JobRecord.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        records[record.num] = record
    return records


# --- planning ---------------------------------------------------------------------------


def _override_key(override: str) -> str:
    key = override.split("=", 1)[0]
    return key.lstrip("+~")


def job_labels(job_overrides: list[list[str]]) -> list[str]:
    """Name each job after the overrides that vary across the sweep (`hetero=region`)."""
    if not job_overrides:
        return []
    values: dict[str, set[str]] = {}
    for overrides in job_overrides:
        for o in overrides:
            values.setdefault(_override_key(o), set()).add(o)
    varying = {k for k, v in values.items() if len(v) > 1 or any(sum(_override_key(o) == k for o in ov) != 1 for ov in job_overrides)}
    labels = []
    for overrides in job_overrides:
        chosen = [o for o in overrides if _override_key(o) in varying]
        labels.append(",".join(chosen) or ",".join(overrides) or "default")
    return labels


def planned_overrides(cfg: DictConfig, config_loader: Any = None) -> list[list[str]] | None:
    """Hydra's job list, as the basic sweeper will build it; None for other sweepers."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = OmegaConf.select(cfg, "hydra.sweeper._target_", default="")
    if sweeper and not sweeper.endswith("BasicSweeper"):
        return None
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += list(OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False))
    parser = OverridesParser.create(config_loader=config_loader)
    batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    return [list(job) for batch in batches for job in batch]


def _is_sweep(override: str) -> bool:
    """`hetero=a,b` and `glob(...)`, `range(...)` sweep; `model.controls=[a,b]` does not."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create().parse_override(override).is_sweep_override()
    except Exception:
        return "," in override.split("=", 1)[-1] and "[" not in override


def task_config(cfg: DictConfig) -> DictConfig:
    """The job's config without the `hydra` node, which cannot be resolved outside a job."""
    task = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(task):
        task.pop("hydra", None)
    return task


def job_key(spec: Any, fingerprint: str) -> str:
    """Identity of a job's results: the resolved spec (minus tracking/force/cache) and the data."""
    tree = OmegaConf.to_container(OmegaConf.structured(spec)) if dataclasses.is_dataclass(spec) else dict(spec)
    tree = {k: v for k, v in tree.items() if k not in _KEY_EXCLUDED}
    tree["data"] = {k: v for k, v in tree.get("data", {}).items() if k not in _KEY_EXCLUDED_DATA}
    text = json.dumps({"spec": tree, "data": fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def treatment_of(spec: Any) -> str:
    return spec.model.treatment


# --- threads ----------------------------------------------------------------------------


def cores() -> int:
    from joblib import cpu_count

    return max(1, cpu_count())


def threads_per_worker(n_workers: int, n_cores: int | None = None) -> int:
    """So that workers × threads ≤ cores."""
    return max(1, (n_cores or cores()) // max(1, n_workers))


def set_thread_env(threads: int, environ: dict | None = None) -> dict[str, str]:
    """Cap every numerical library's pool for processes started from now on; a user's own setting wins."""
    env = os.environ if environ is None else environ
    applied = {}
    for var in THREAD_VARS:
        if var not in env:
            env[var] = str(threads)
            applied[var] = str(threads)
    env[THREADS_ENV] = str(threads)
    # pyfixest 0.60's results depend on Python's string hashing in the last digits (~1e-13):
    # one seed for every worker makes a sweep reproducible run after run (run.py pins it too).
    env.setdefault("PYTHONHASHSEED", "0")
    return applied


def cap_threads(threads: int | None) -> None:
    """Inside a job: limit the pools already loaded in this process (BLAS, OpenMP)."""
    if not threads:
        return
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(threads))
    except Exception as err:  # never fail a job because a pool could not be limited
        log.debug("threadpoolctl: %s", err)


_LAUNCHER_HINTS = {
    "hydra_ray_launcher": 'pip install -e ".[ray]" && pip install --no-deps hydra-ray-launcher==1.2.2 '
    "(its cloudpickle<3 pin conflicts with joblib 1.6's cloudpickle>=3, so pip cannot resolve it with eqexp; "
    "it works with cloudpickle 3; see docs/sweeps.md)",
    "hydra_submitit_launcher": 'pip install -e ".[slurm]"',
    "hydra_joblib_launcher": 'pip install -e .',
}


class SweepError(RuntimeError):
    """A sweep that cannot start; the message says what to do."""


def check_launcher(cfg: DictConfig) -> None:
    """Fail before any work when the chosen launcher's plugin is not installed."""
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "")
    module = target.rsplit(".", 1)[0]
    if not module:
        return
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        hint = next((h for name, h in _LAUNCHER_HINTS.items() if name in module), "install the launcher's Hydra plugin")
        choice = OmegaConf.select(cfg, "hydra.runtime.choices", default={}) or {}
        raise SweepError(f"The launcher hydra/launcher={choice.get('hydra/launcher', '?')} needs the module {module}, which is not installed: {hint}.")


def _launcher_workers(cfg: DictConfig, n_jobs_planned: int | None) -> int | None:
    """Concurrent local workers for the joblib launcher; None for launchers that run elsewhere."""
    target = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "")
    if "joblib" not in target.lower():
        return None
    from joblib import effective_n_jobs

    n_jobs = OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=-1)
    workers = effective_n_jobs(-1 if n_jobs is None else int(n_jobs))
    return min(workers, n_jobs_planned) if n_jobs_planned else workers


# --- the sweep's context: what the parent tells every job -------------------------------


@dataclass
class SweepContext:
    sweep_dir: str
    root: str
    parent_run_id: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    artifact_root: str | None = None
    labels: dict[int, str] = field(default_factory=dict)
    threads: int | None = None
    workers: int | None = None
    n_planned: int | None = None
    job_keys: dict[int, str] = field(default_factory=dict)  # as planned by the parent
    earlier: dict[int, str] | None = None  # job -> its FINISHED run, looked up once by the parent (None: not looked up)

    @classmethod
    def from_dict(cls, data: dict) -> "SweepContext":
        names = {f.name for f in dataclasses.fields(cls)}
        ctx = cls(**{k: v for k, v in data.items() if k in names})
        ctx.labels = {int(k): v for k, v in (ctx.labels or {}).items()}
        ctx.job_keys = {int(k): v for k, v in (ctx.job_keys or {}).items()}
        if ctx.earlier is not None:
            ctx.earlier = {int(k): v for k, v in ctx.earlier.items()}
        return ctx


_JOB_CONTEXT: SweepContext | None = None  # set by on_job_start, in the process that runs the job
_OPEN_SWEEPS: dict[str, SweepContext] = {}  # sweeps started by this process and not yet summarised
_LAST_EXIT_CODE = 0


def context_for(hydra_cfg: Any) -> SweepContext:
    """The sweep context in a job: pushed by the callback, else read from the plan, else minimal."""
    sweep_dir = Path(str(hydra_cfg.sweep.dir)).resolve()
    if _JOB_CONTEXT is not None and Path(_JOB_CONTEXT.sweep_dir) == sweep_dir:
        return _JOB_CONTEXT
    plan = sweep_dir / PLAN_FILE
    if plan.exists():
        try:
            return SweepContext.from_dict(json.loads(plan.read_text())["context"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return SweepContext(sweep_dir=str(sweep_dir), root=str(Path(hydra_cfg.runtime.cwd)))


def _tracking_spec(cfg: DictConfig):
    from eqexp.spec import TrackingSpec

    node = OmegaConf.select(cfg, "tracking", default=None)
    merged = OmegaConf.merge(OmegaConf.structured(TrackingSpec), node if node is not None else {})
    return OmegaConf.to_object(merged)


def _claim_sweep_dir(cfg: DictConfig) -> Path:
    """A directory that no other sweep shares.

    The default name has microseconds; if it exists all the same, this sweep moves to
    `<name>-<pid>` (written into Hydra's own overrides so that every job follows). A
    directory given explicitly (`hydra.sweep.dir=...`) may be reused: its old status
    records are cleared so that they are never mistaken for this sweep's.
    """
    sweep_dir = Path(str(cfg.hydra.sweep.dir))
    explicit = any(str(o).startswith("hydra.sweep.dir=") for o in cfg.hydra.overrides.hydra)
    if explicit:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(sweep_dir / STATUS_DIR, ignore_errors=True)
        return sweep_dir.resolve()
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        sweep_dir.mkdir()
    except FileExistsError:
        sweep_dir = sweep_dir.with_name(f"{sweep_dir.name}-{os.getpid()}")
        sweep_dir.mkdir()
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.sweep.dir = str(sweep_dir)
            cfg.hydra.overrides.hydra.append(f"hydra.sweep.dir={sweep_dir}")
    return sweep_dir.resolve()


def _compose_jobs(cfg: DictConfig, overrides: list[list[str]], labels: list[str]) -> tuple[list[JobRecord], dict]:
    """Compose and validate every job in the parent; collect the data configs to build once."""
    from hydra.core.global_hydra import GlobalHydra

    from eqexp.data import load as data_load
    from eqexp.spec import load_spec

    loader = GlobalHydra.instance().config_loader()
    records, data_specs = [], {}
    for num, (job_overrides, label) in enumerate(zip(overrides, labels)):
        record = JobRecord(num=num, label=label, overrides=list(job_overrides))
        job_cfg = loader.load_sweep_config(cfg, list(job_overrides))
        try:
            spec = load_spec(task_config(job_cfg))
            record.analysis, record.treatment = spec.analysis, treatment_of(spec)
            data_key = json.dumps(dataclasses.asdict(spec.data), sort_keys=True, default=str)
            if data_key not in data_specs:
                data_specs[data_key] = (spec.data, data_load.fingerprint(spec.data))
            record.fingerprint = data_specs[data_key][1]
            record.job_key = job_key(spec, record.fingerprint)
            record.force = spec.force
        except Exception as err:  # recorded: the job itself will fail with the same message
            record.reason = f"{type(err).__name__}: {err}"
        records.append(record)
    return records, {k: v[0] for k, v in data_specs.items()}


def _build_data(data_specs: Iterable[Any]) -> None:
    """Build each data cache once, here, so that workers never race to build it."""
    from eqexp.data import load as data_load

    for spec in data_specs:
        try:
            key = data_load.fingerprint(spec)
            if (Path(spec.cache_dir) / key / "panel.parquet").exists():
                continue
            start = time.perf_counter()
            data_load.load(spec)
            print(f"[eqexp] data '{spec.name}' built in {time.perf_counter() - start:.1f} s", flush=True)
        except Exception as err:  # the jobs that need it will fail and say why
            print(f"[eqexp] could not build data '{spec.name}': {err}", flush=True)


def start_sweep(cfg: DictConfig) -> SweepContext:
    """Everything the parent does before the first worker starts (see the module docstring)."""
    from hydra.core.global_hydra import GlobalHydra

    from eqexp import tracking

    start = time.perf_counter()
    check_launcher(cfg)
    root = Path(str(OmegaConf.select(cfg, "hydra.runtime.cwd", default=os.getcwd())))
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    overrides = planned_overrides(cfg, loader)
    labels = job_labels(overrides) if overrides is not None else []
    # A job that cannot be composed (a misspelt config group) stops the sweep here, before any work.
    records, data_specs = _compose_jobs(cfg, overrides, labels) if overrides is not None and loader else ([], {})
    sweep_dir = _claim_sweep_dir(cfg)
    workers = _launcher_workers(cfg, len(overrides) if overrides else None)
    threads = threads_per_worker(workers) if workers else None

    ctx = SweepContext(
        sweep_dir=str(sweep_dir), root=str(root), labels=dict(enumerate(labels)), threads=threads,
        workers=workers, n_planned=len(overrides) if overrides is not None else None,
    )
    tspec = _tracking_spec(cfg)
    task_overrides = list(OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False))
    if tspec.enabled:
        ctx.tracking_uri = tracking.resolve_uri(tspec, root)
        ctx.experiment, ctx.artifact_root = tspec.experiment, tspec.artifact_root
        ctx.parent_run_id = _create_parent_run(tspec, root, sweep_dir, task_overrides, ctx)
        ctx.job_keys = {r.num: r.job_key for r in records if r.job_key}
        ctx.earlier = _earlier_runs(ctx.tracking_uri, tspec.experiment, records)

    n = ctx.n_planned if ctx.n_planned is not None else "?"
    print(f"[eqexp] sweep of {n} jobs into {sweep_dir} (planned and validated in {time.perf_counter() - start:.1f} s)", flush=True)
    if workers:
        print(f"[eqexp] {workers} local workers × {threads} thread(s) each on {cores()} cores", flush=True)
    for record in records:
        note = f"  (will fail: {record.reason})" if record.reason else ""
        if ctx.earlier and ctx.earlier.get(record.num):
            note = f"  (skip: finished in run {ctx.earlier[record.num]})"
        print(f"[eqexp]   #{record.num} {record.label}{note}", flush=True)
    _build_data(data_specs.values())
    if threads:  # after the build, which may use every core; before any worker starts
        set_thread_env(threads)
    _write_json(sweep_dir / PLAN_FILE, {
        "context": dataclasses.asdict(ctx),
        "task_overrides": task_overrides,
        "jobs": [dataclasses.asdict(r) for r in records],
        "created": time.time(),
    })
    _OPEN_SWEEPS[str(sweep_dir)] = ctx
    return ctx


def _earlier_runs(uri: str, experiment: str, records: list[JobRecord]) -> dict[int, str]:
    """For every planned job (not forced), its FINISHED run, if any: one look-up here, none in the workers."""
    earlier = {}
    for r in records:
        if r.job_key and not r.force:
            found = find_finished_run(uri, experiment, r.job_key)
            if found is not None:
                earlier[r.num] = found.info.run_id
    return earlier


def _create_parent_run(tspec: Any, root: Path, sweep_dir: Path, task_overrides: list[str], ctx: SweepContext) -> str:
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    from eqexp import tracking

    experiment_id = tracking.ensure_experiment(tspec, root)
    client = MlflowClient(tracking.resolve_uri(tspec, root))
    swept = [o for o in task_overrides if _is_sweep(o)] or task_overrides
    name = f"sweep: {' '.join(swept) or 'default'}"[:240]
    tags = {
        **tracking.environment_tags(root),
        "eqexp.kind": "sweep",
        "eqexp.sweep_dir": str(sweep_dir),
        "eqexp.command": " ".join(["python run.py -m", *task_overrides])[:5000],
        "mlflow.note.content": f"Sweep of {ctx.n_planned} jobs; outputs in {sweep_dir}",
    }
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    params = {"sweep.n_jobs": str(ctx.n_planned), "sweep.workers": str(ctx.workers), "sweep.threads": str(ctx.threads)}
    params.update({f"sweep.override.{i}": o[:6000] for i, o in enumerate(task_overrides[:90])})
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    return run.info.run_id


class SweepCallback(Callback):
    """Hydra callback (conf/config.yaml `hydra.callbacks`); a no-op for single runs."""

    def __init__(self) -> None:
        self.context: dict | None = None  # travels to the workers with Hydra's pickled context

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.context = dataclasses.asdict(start_sweep(config))

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _JOB_CONTEXT
        if self.context is not None:
            _JOB_CONTEXT = SweepContext.from_dict(self.context)
            cap_threads(_JOB_CONTEXT.threads)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.context is not None:
            finish_sweep(Path(self.context["sweep_dir"]))


# --- one job ----------------------------------------------------------------------------


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def find_finished_run(uri: str, experiment: str, key: str):
    """The newest FINISHED run with this `job_key`, or None."""
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.job_key = '{key}' and attributes.status = 'FINISHED'",
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    return runs[0] if runs else None


_REUSED_ARTIFACTS = ("coefficients.csv", "tests.csv", "rows.csv", "job.json", "tables")


def _reuse_run(earlier, out_dir: Path, uri: str, parent_run_id: str | None, record: JobRecord) -> str | None:
    """A skipped job: copy the earlier run's results here and show it under this sweep's parent."""
    from mlflow.entities import Metric, Param

    client = _client(uri)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {a.path for a in client.list_artifacts(earlier.info.run_id)}
    for name in _REUSED_ARTIFACTS:
        if name in names:
            client.download_artifacts(earlier.info.run_id, name, str(out_dir))
    if not parent_run_id:
        return None
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "eqexp.status": SKIPPED,
        "eqexp.reused_run_id": earlier.info.run_id,
        "eqexp.job_num": str(record.num),
        "mlflow.note.content": f"Skipped: identical spec and data already finished in run {earlier.info.run_id} (force=true re-runs it).",
    }
    tags.update({k: v for k, v in earlier.data.tags.items() if k in ("data_fingerprint", "analysis")})
    run = client.create_run(earlier.info.experiment_id, run_name=record.label, tags=tags)
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in earlier.data.metrics.items()]
    params = [Param(k, v) for k, v in earlier.data.params.items()]
    for i in range(0, len(metrics), 900):
        client.log_batch(run.info.run_id, metrics=metrics[i : i + 900])
    for i in range(0, len(params), 100):
        client.log_batch(run.info.run_id, params=params[i : i + 100])
    client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id


def _log_failure(cfg: DictConfig, spec: Any, ctx: SweepContext, out_dir: Path, record: JobRecord, root: Path) -> str | None:
    """A failed job as an MLflow run with status FAILED; its directory (traceback.txt) as artifacts."""
    from eqexp import tracking
    from eqexp.spec import TrackingSpec

    if spec is not None:
        tspec = spec.tracking
        if not tspec.enabled:
            return None
    elif ctx.tracking_uri:
        tspec = TrackingSpec(uri=ctx.tracking_uri, experiment=ctx.experiment or "eqexp", artifact_root=ctx.artifact_root or "outputs/mlartifacts")
    else:
        return None
    tree = OmegaConf.to_container(OmegaConf.structured(spec)) if spec is not None else OmegaConf.to_container(task_config(cfg), resolve=False)
    tags = {"job_key": record.job_key or "", "eqexp.status": FAILED, "eqexp.job_num": str(record.num),
            "eqexp.error": record.reason[:4000], "mlflow.note.content": f"Failed: {record.reason[:4000]}"}
    parent = ctx.parent_run_id if tracking.resolve_uri(tspec, root) == ctx.tracking_uri else None
    return tracking.log_run(tspec, root, record.label, tracking.flatten(tree), {}, tags, out_dir, parent, status="FAILED")


def key_results(coefficients: pd.DataFrame, treatment: str | None) -> dict[str, Any]:
    """Treatment coefficient, t and N of the job's last model."""
    from eqexp.spec import base_variable

    if coefficients is None or coefficients.empty or not treatment:
        return {}
    last = coefficients[coefficients.model == coefficients.model.iloc[-1]]
    rows = last[[base_variable(t) == treatment and not t.endswith("_sq") for t in last.term]]
    if rows.empty:
        return {"model": last.model.iloc[0], "n_obs": int(last.n_obs.iloc[0])}
    row = rows.iloc[0]
    return {"model": row.model, "sample": row["sample"], "term": row.term, "estimate": float(row.estimate),
            "t": float(row.statistic), "n_obs": int(row.n_obs)}


def run_sweep_job(cfg: DictConfig, hydra_cfg: Any, root: Path) -> JobRecord:
    """Run one job of a sweep and record its outcome; never raises for the job's own failure."""
    from eqexp import runner
    from eqexp.data import load as data_load
    from eqexp.spec import load_spec

    ctx = context_for(hydra_cfg)
    sweep_dir = Path(ctx.sweep_dir)
    num = int(hydra_cfg.job.num)
    out_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    label = ctx.labels.get(num) or ",".join(overrides) or "default"
    record = JobRecord(num=num, label=label, overrides=overrides, status=STARTED, dir=str(out_dir),
                       pid=os.getpid(), host=socket.gethostname(), started=time.time())
    cap_threads(ctx.threads or (int(os.environ[THREADS_ENV]) if os.environ.get(THREADS_ENV) else None))
    record.threads = {v: os.environ[v] for v in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", THREADS_ENV, "PYTHONHASHSEED") if v in os.environ}
    write_status(sweep_dir, record)
    total = ctx.n_planned if ctx.n_planned is not None else "?"
    print(f"[eqexp] job {num + 1}/{total} {label}: started (pid {record.pid})", flush=True)
    spec = None
    try:
        t0 = time.perf_counter()
        spec = load_spec(cfg)
        record.analysis, record.treatment = spec.analysis, treatment_of(spec)
        record.fixed_effects, record.labels = list(spec.model.fixed_effects), dict(spec.report.labels)
        record.fingerprint = data_load.fingerprint(spec.data)
        record.job_key = job_key(spec, record.fingerprint)
        uri = None
        parent = None
        if spec.tracking.enabled:
            from eqexp import tracking

            uri = tracking.resolve_uri(spec.tracking, root)
            parent = ctx.parent_run_id if uri == ctx.tracking_uri else None
        earlier = None
        if uri and not spec.force:
            if ctx.earlier is not None and ctx.job_keys.get(num) == record.job_key and uri == ctx.tracking_uri:
                earlier_id = ctx.earlier.get(num)  # the parent looked it up before the sweep started
                earlier = _client(uri).get_run(earlier_id) if earlier_id else None
            else:
                earlier = find_finished_run(uri, spec.tracking.experiment, record.job_key)
        record.timings["resume_check"] = time.perf_counter() - t0
        if earlier is not None:
            record.reused_run_id = earlier.info.run_id
            record.run_id = _reuse_run(earlier, out_dir, uri, parent, record)
            record.status = SKIPPED
            record.reason = f"identical spec and data finished in run {earlier.info.run_id}"
        else:
            tags = {"job_key": record.job_key, "eqexp.status": FINISHED, "eqexp.job_num": str(num), "eqexp.sweep_dir": str(sweep_dir)}
            t1 = time.perf_counter()
            result = runner.run_job(spec, out_dir, root=root, run_name=label, parent_run_id=parent, tags=tags)
            record.timings["run_job"] = time.perf_counter() - t1
            record.timings["run_job_before_logging"] = result.seconds
            record.run_id = result.run_id
            record.status = FINISHED
    except Exception as err:  # a failing job is recorded and never stops the others
        record.status = FAILED
        record.reason = f"{type(err).__name__}: {err}"
        text = traceback.format_exc()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "traceback.txt").write_text(text)
        log.error("job %s (%s) failed:\n%s", num, label, text)  # into the job's log file
        try:
            record.run_id = _log_failure(cfg, spec, ctx, out_dir, record, root)
        except Exception as log_err:
            record.reason += f" [could not log the failure to MLflow: {log_err}]"
    record.ended = time.time()
    record.seconds = record.ended - record.started
    write_status(sweep_dir, record)
    why = f": {record.reason}" if record.status != FINISHED else ""
    print(f"[eqexp] job {num + 1}/{total} {label}: {record.status} in {record.seconds:.1f} s{why}", flush=True)
    return record


# --- the end of a sweep -----------------------------------------------------------------


def _read_plan(sweep_dir: Path) -> dict:
    path = Path(sweep_dir) / PLAN_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def job_records(sweep_dir: Path) -> list[JobRecord]:
    """Every planned job with its final state; jobs without an end record never finished."""
    plan = _read_plan(sweep_dir)
    planned = {r["num"]: JobRecord.from_dict(r) for r in plan.get("jobs", [])}
    found = read_statuses(sweep_dir)
    records = []
    for num in sorted(set(planned) | set(found)):
        record = found.get(num)
        if record is None:
            record = planned[num]
            planned_reason = record.reason
            record.status = NEVER
            record.reason = "never started (the sweep stopped before launching it)"
            if planned_reason:
                record.reason += f"; its spec was invalid: {planned_reason}"
        elif record.status == STARTED:
            record.status = NEVER
            record.reason = f"started on {record.host} (pid {record.pid}) and never finished: the worker died or the sweep was stopped"
        if planned.get(num) is not None:
            record.job_key = record.job_key or planned[num].job_key
        records.append(record)
    return records


def read_coefficients(record: JobRecord) -> pd.DataFrame | None:
    if record.status not in OK_STATUSES or not record.dir:
        return None
    path = Path(record.dir) / "coefficients.csv"
    if not path.exists():
        return None
    return pd.read_csv(path)


def summary_frame(records: list[JobRecord], coefficients: dict[int, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for r in records:
        res = key_results(coefficients.get(r.num), r.treatment)
        rows.append({
            "job": r.num, "overrides": r.label, "status": r.status, "reason": r.reason,
            "model": res.get("model", ""), "term": res.get("term", ""), "estimate": res.get("estimate", np.nan),
            "t": res.get("t", np.nan), "n_obs": res.get("n_obs", np.nan),
            "run_id": r.run_id or "", "reused_run_id": r.reused_run_id or "",
            "seconds": round(r.seconds, 2) if r.seconds else np.nan, "dir": r.dir or "",
        })
    return pd.DataFrame(rows, columns=["job", "overrides", "status", "reason", "model", "term", "estimate", "t", "n_obs",
                                       "run_id", "reused_run_id", "seconds", "dir"])


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_text(summary: pd.DataFrame, markdown: bool = False) -> str:
    counts = summary.status.value_counts()
    head = ", ".join(f"{counts.get(s, 0)} {s}" for s in (FINISHED, SKIPPED, FAILED, NEVER) if counts.get(s, 0))
    columns = ["job", "overrides", "status", "model", "term", "estimate", "t", "n_obs", "reason"]
    cells = [[_fmt(row[c], 2 if c == "t" else 4) if c != "n_obs" else (f"{int(row[c]):,}" if row[c] == row[c] else "")
              for c in columns] for _, row in summary.iterrows()]
    if markdown:
        lines = [f"**Sweep summary**: {len(summary)} jobs: {head}", "", "| " + " | ".join(columns) + " |",
                 "|" + "|".join(["---:", ":---", ":---", ":---", ":---", "---:", "---:", "---:", ":---"]) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in cells]
        return "\n".join(lines) + "\n"
    shown = [[c if len(c) <= 90 else c[:87] + "..." for c in row] for row in cells]
    widths = [max(len(x) for x in col) for col in zip(columns, *shown)]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    rule = "-" * min(160, sum(widths) + 2 * len(widths))
    return "\n".join([f"Sweep summary: {len(summary)} jobs: {head}", rule, fmt(columns), rule, *map(fmt, shown), rule])


def exit_code(summary: pd.DataFrame) -> int:
    """Non-zero when any job failed or never finished."""
    return 0 if summary.status.isin(OK_STATUSES).all() else 1


def combined_coefficients(records: list[JobRecord], coefficients: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """All jobs' coefficient rows, long, with the job's number, label, treatment and fixed effects."""
    frames = []
    for r in records:
        df = coefficients.get(r.num)
        if df is None or df.empty:
            continue
        frames.append(df.assign(job=r.num, label=r.label, treatment=r.treatment or "",
                                fixed_effects=json.dumps(r.fixed_effects), status=r.status))
    if not frames:
        return pd.DataFrame(columns=["job", "label", "treatment", "fixed_effects", "status", "model", "sample", "outcome", "term",
                                     "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high", "n_obs", "r2", "r2_within", "vcov"])
    long = pd.concat(frames, ignore_index=True)
    first = ["job", "label", "treatment", "fixed_effects", "status"]
    return long[first + [c for c in long.columns if c not in first]]


def is_treatment_term(term: str, treatment: str) -> bool:
    from eqexp.spec import base_variable

    return bool(treatment) and base_variable(term) == treatment


def _column_labels(rows: pd.DataFrame) -> dict[tuple[int, str], str]:
    """(job, model) -> column label: the job's overrides, then the group (split jobs) or the model id."""
    names = {}
    for job, part in rows.groupby("job", sort=False):
        firsts = part.groupby("model", sort=False).first()
        by_sample = firsts["sample"].astype(str).nunique() == len(firsts)
        for model, first in firsts.iterrows():
            label = str(first["label"])
            if len(firsts) > 1:
                label = f"{label}: {first['sample']}" if by_sample else f"{label} {model}"
            names[(job, model)] = label
    return names


def combined_fits(long: pd.DataFrame) -> tuple[list, list[str]]:
    """One `Fit` per job × model holding only the treatment terms, and the column labels."""
    from eqexp.estimate import Fit

    fits, groups = [], []
    names = _column_labels(long)
    for job, rows in long.groupby("job", sort=False):
        for model in dict.fromkeys(rows.model):
            m = rows[rows.model == model]
            m = m[[is_treatment_term(t, tr) for t, tr in zip(m.term, m.treatment)]]
            if m.empty:
                continue
            tidy = m[["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]].reset_index(drop=True)
            first = m.iloc[0]
            fits.append(Fit(
                model=str(model), sample=str(first["sample"]), outcome=str(first.outcome), regressors=list(tidy.term),
                fixed_effects=json.loads(first.fixed_effects or "[]"), tidy=tidy, vcov=np.zeros((len(tidy), len(tidy))),
                n_obs=int(first.n_obs), r2=float(first.r2), r2_within=float(first.r2_within), df_t=0,
                vcov_label=str(first.vcov),
            ))
            groups.append(names[(job, model)])
    return fits, groups


def combined_table(long: pd.DataFrame, title: str, labels: dict[str, str] | None = None, notes: list[str] | None = None, stat: str = "t", digits: int = 4):
    from eqexp.report.regression import regression_table

    fits, groups = combined_fits(long)
    if not fits:
        return None
    treatments = list(dict.fromkeys(long.treatment))
    first_terms = [t for tr in treatments for t in (tr, f"{tr}_sq")]
    return regression_table(fits, title, labels or {}, stat, digits, first_terms=first_terms, groups=groups, notes=notes)


def coefficient_plot(long: pd.DataFrame, path: Path, title: str, labels: dict[str, str] | None = None) -> Path | None:
    """Treatment coefficients of every job × model with their confidence intervals, one panel per term kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eqexp.report.regression import label as term_label

    rows = long[[is_treatment_term(t, tr) for t, tr in zip(long.term, long.treatment)]]
    if rows.empty:
        return None
    rows = rows.assign(kind=["square" if t.endswith("_sq") else "linear" for t in rows.term])
    kinds = [k for k in ("linear", "square") if (rows.kind == k).any()]
    columns = list(dict.fromkeys(zip(rows.job, rows.model)))
    names = _column_labels(long)
    height = max(2.5, 0.32 * len(columns) + 1.2)
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.2 * len(kinds) + 2.5, height), sharey=True, squeeze=False)
    y = {c: i for i, c in enumerate(reversed(columns))}
    for ax, kind in zip(axes[0], kinds):
        part = rows[rows.kind == kind]
        for r in part.itertuples():
            pos = y[(r.job, r.model)]
            ok = r.conf_low == r.conf_low and r.conf_high == r.conf_high
            ax.errorbar(r.estimate, pos, xerr=[[r.estimate - r.conf_low], [r.conf_high - r.estimate]] if ok else None,
                        fmt="o", color="C0" if r.p_value < 0.1 else "C7", ecolor="C0", capsize=3, ms=4)
        ax.axvline(0, color="k", lw=0.8, ls="--")
        terms = list(dict.fromkeys(part.term))
        ax.set_title(", ".join(term_label(t, labels or {}) for t in terms), fontsize=10)
        ax.set_xlabel("estimate (95% CI)")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(list(y.values()))
    axes[0][0].set_yticklabels([names[c] for c in y], fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _merged_labels(records: list[JobRecord]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for r in records:
        for k, v in (r.labels or {}).items():
            labels.setdefault(k, v)
    return labels


def _notes(records: list[JobRecord]) -> list[str]:
    notes = ["Columns are jobs (× models) of the sweep, labelled by their overrides; only the treatment terms are shown."]
    for r in records:
        if r.status not in OK_STATUSES:
            notes.append(f"Job {r.num} ({r.label}) {r.status}: {r.reason.splitlines()[0][:200] if r.reason else ''}")
        elif r.status == SKIPPED:
            notes.append(f"Job {r.num} ({r.label}) skipped: results from the earlier run {r.reused_run_id or ''}.".replace(" .", "."))
    return notes


def write_side_by_side(records: list[JobRecord], long: pd.DataFrame, out: Path, title: str) -> list[Path]:
    """combined.{md,tex,html,txt}, combined_coefficients.csv and coefplot.png in `out`."""
    from eqexp.report.table import to_text, write_table

    out.mkdir(parents=True, exist_ok=True)
    written = []
    long.to_csv(out / "combined_coefficients.csv", index=False)
    written.append(out / "combined_coefficients.csv")
    labels = _merged_labels(records)
    table = combined_table(long, title, labels, _notes(records))
    if table is not None:
        written += write_table(table, out, "combined")
        print("\n" + to_text(table) + "\n", flush=True)
    plot = coefficient_plot(long, out / "coefplot.png", title, labels)
    if plot is not None:
        written.append(plot)
    return written


def _record_never_finished(uri: str, parent_run_id: str, records: list[JobRecord]) -> None:
    """Jobs that never finished get a KILLED child run, so MLflow shows every planned job."""
    client = _client(uri)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    stale = client.search_runs([experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'")
    for run in stale:  # a worker died while logging: its run would show as running for ever
        client.set_terminated(run.info.run_id, status="KILLED")
    for r in records:
        if r.status != NEVER or r.run_id:
            continue
        tags = {"mlflow.parentRunId": parent_run_id, "eqexp.status": NEVER, "eqexp.job_num": str(r.num),
                "job_key": r.job_key or "", "mlflow.note.content": r.reason}
        run = client.create_run(experiment_id, run_name=r.label, tags=tags)
        client.set_terminated(run.info.run_id, status="KILLED")
        r.run_id = run.info.run_id


def finish_sweep(sweep_dir: Path, aborted: bool = False) -> int:
    """Summary, combined table, plot, parent run; print where they are; return the exit code."""
    global _LAST_EXIT_CODE
    sweep_dir = Path(sweep_dir).resolve()
    ctx = _OPEN_SWEEPS.pop(str(sweep_dir), None)
    plan = _read_plan(sweep_dir)
    if ctx is None and plan:
        ctx = SweepContext.from_dict(plan["context"])
    records = job_records(sweep_dir)
    if ctx is not None and ctx.parent_run_id and ctx.tracking_uri:
        try:
            _record_never_finished(ctx.tracking_uri, ctx.parent_run_id, records)
        except Exception as err:
            print(f"[eqexp] could not record unfinished jobs in MLflow: {err}", flush=True)
    coefficients = {r.num: c for r in records if (c := read_coefficients(r)) is not None}
    summary = summary_frame(records, coefficients)
    summary.to_csv(sweep_dir / "summary.csv", index=False)
    (sweep_dir / "summary.md").write_text(summary_text(summary, markdown=True))
    _write_json(sweep_dir / "jobs.json", [dataclasses.asdict(r) for r in records])
    long = combined_coefficients(records, coefficients)
    written = write_side_by_side(records, long, sweep_dir, f"Sweep {sweep_dir.name}: treatment coefficients across jobs")
    print(summary_text(summary), flush=True)
    code = exit_code(summary)
    if ctx is not None and ctx.parent_run_id and ctx.tracking_uri:
        try:
            _finish_parent_run(ctx, sweep_dir, summary, written, aborted)
        except Exception as err:
            print(f"[eqexp] could not finish the MLflow parent run: {err}", flush=True)
    counts = summary.status.value_counts()
    print(f"[eqexp] sweep directory: {sweep_dir}", flush=True)
    print(f"[eqexp] summary: {sweep_dir / 'summary.md'}   combined table: {sweep_dir / 'combined.md'}   plot: {sweep_dir / 'coefplot.png'}", flush=True)
    if ctx is not None and ctx.parent_run_id:
        print(f"[eqexp] MLflow parent run {ctx.parent_run_id}: mlflow ui --backend-store-uri {ctx.tracking_uri}", flush=True)
    if code:
        bad = int(counts.get(FAILED, 0)), int(counts.get(NEVER, 0))
        print(f"[eqexp] {bad[0]} job(s) failed and {bad[1]} never finished; re-run the same command to complete only those.", flush=True)
    _LAST_EXIT_CODE = code
    return code


def _finish_parent_run(ctx: SweepContext, sweep_dir: Path, summary: pd.DataFrame, written: list[Path], aborted: bool) -> None:
    from mlflow.entities import Metric

    client = _client(ctx.tracking_uri)
    now = int(time.time() * 1000)
    counts = summary.status.value_counts()
    metrics = {"jobs_planned": len(summary), **{f"jobs_{s.replace(' ', '_')}": int(counts.get(s, 0)) for s in (FINISHED, SKIPPED, FAILED, NEVER)}}
    client.log_batch(ctx.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    for path in [sweep_dir / "summary.csv", sweep_dir / "summary.md", sweep_dir / "jobs.json", sweep_dir / PLAN_FILE, *written]:
        if path.exists():
            client.log_artifact(ctx.parent_run_id, str(path))
    status = "FINISHED" if exit_code(summary) == 0 else ("KILLED" if aborted else "FAILED")
    client.set_terminated(ctx.parent_run_id, status=status)


def finish_open_sweeps(aborted: bool = True) -> int:
    """Summarise every sweep this process started and did not summarise (Hydra raised, a worker died)."""
    code = 0
    for sweep_dir in list(_OPEN_SWEEPS):
        try:
            code = max(code, finish_sweep(Path(sweep_dir), aborted=aborted))
        except Exception:
            traceback.print_exc()
            code = max(code, 1)
    return code


def last_exit_code() -> int:
    return _LAST_EXIT_CODE


def main_with_summary(main: Any) -> int:
    """Run Hydra's `main()`, then make sure every sweep ends with its summary; return the exit code.

    Hydra calls `sys.exit(1)` when a worker dies (joblib aborts the whole sweep and
    `on_multirun_end` never runs); this wrapper still writes the summary, which says which
    jobs never finished. Launcher-agnostic: it works the same for joblib, Ray and SLURM.
    """
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except KeyboardInterrupt:
        print("[eqexp] interrupted", file=sys.stderr, flush=True)
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    code = max(code, finish_open_sweeps(aborted=True))
    return max(code, last_exit_code())
