"""The start of a sweep, in the parent before any worker starts (step 1 of the package
docstring): the launcher check, a sweep directory of its own, every job composed and
validated, each data cache built once, the MLflow parent run, `sweep.json`; and the
Hydra callback that drives the whole sweep."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterable

from hydra.errors import ConfigCompositionException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from eqexp.multiverse.axes import MultiverseError
from eqexp.report import figures
from eqexp.sweep import runs, stop
from eqexp.sweep import workers as local_workers
from eqexp.sweep.finish import _LOGGERS, _OPEN_SWEEPS, finish_sweep
from eqexp.sweep.job import set_job_context
from eqexp.sweep.plan import _is_sweep, bootstrap_share_key, estimated_cost, job_key, job_labels, planned_overrides, share_key, treatment_of
from eqexp.sweep.parsed_once import parse_once
from eqexp.sweep.records import PLAN_FILE, STATUS_DIR, JobRecord, SweepContext, _write_json
from eqexp.sweep.threads import _launcher_workers, cores, set_thread_env, threads_per_worker, worker_env

# conf/hydra/launcher/{ray,submitit_slurm}.yaml carry the plugins' own names, so Hydra validates
# them against the plugins' schemas (welcome: a misspelt key fails) and warns each time that this
# "automatic schema matching" is deprecated. The files are complete without the schemas.
warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name")


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


def _planned_launcher(cfg: DictConfig) -> bool:
    """Is the launcher eqexp's (`hydra/launcher=eqexp_joblib`), whose workers can start now?"""
    return str(OmegaConf.select(cfg, "hydra.launcher._target_", default="")).startswith("hydra_plugins.eqexp_sweeps.")


def _tracking_spec(cfg: DictConfig):
    from eqexp.spec import TrackingSpec

    node = OmegaConf.select(cfg, "tracking", default=None)  # resolved where it is: ${outputs} is at the root
    merged = OmegaConf.merge(OmegaConf.structured(TrackingSpec), OmegaConf.to_container(node, resolve=True) if node is not None else {})
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


def compose_job(loader: Any, cfg: DictConfig, overrides: list[str]) -> tuple[DictConfig, Any, str]:
    """One job's composed config and its validated spec, or why the spec is invalid (a config
    that cannot be composed at all, such as a misspelt group, raises)."""
    from eqexp.spec import load_spec

    job_cfg = loader.load_sweep_config(cfg, list(overrides))
    try:
        return job_cfg, load_spec(job_cfg), ""
    except Exception as err:  # recorded: the job itself will fail with the same message
        return job_cfg, None, f"{type(err).__name__}: {err}"


def _compose_all(loader: Any, cfg: DictConfig, overrides: list[list[str]], warmup: Any, composed: dict[int, tuple]) -> list[tuple]:
    """Every job composed (`composed`: those done already): here one by one, or, with warming
    workers, beside them (the workers take jobs from the front as they finish importing, this
    process from the back)."""
    if warmup is None:
        return [composed[i] if i in composed else compose_job(loader, cfg, o) for i, o in enumerate(overrides)]
    futures = {i: warmup.compose(compose_job, list(o)) for i, o in enumerate(overrides) if i not in composed}
    try:
        for i in reversed(futures):
            if not futures[i].cancel():  # a worker has it already, and every job before it
                break
            composed[i] = compose_job(loader, cfg, overrides[i])
        return [composed[i] if i in composed else futures[i].result() for i in range(len(overrides))]
    except BaseException:  # a job that cannot be composed: the workers stop composing the others
        for future in futures.values():
            future.cancel()
        raise


def _compose_jobs(cfg: DictConfig, overrides: list[list[str]], labels: list[str], warmup: Any = None,
                  composed: dict[int, tuple] | None = None) -> tuple[list[JobRecord], dict]:
    """Compose and validate every job (`composed`: those done already); collect the data configs to build once."""
    from hydra.core.global_hydra import GlobalHydra

    from eqexp.data import load as data_load

    loader = GlobalHydra.instance().config_loader()
    records, data_specs = [], {}
    jobs = _compose_all(loader, cfg, overrides, warmup, dict(composed or {}))
    for num, (job_overrides, label, (job_cfg, spec, reason)) in enumerate(zip(overrides, labels, jobs)):
        record = JobRecord(num=num, label=label, overrides=list(job_overrides), reason=reason)
        local_workers.COMPOSED[tuple(job_overrides)] = job_cfg  # composed once: Hydra's sweeper and the launcher reuse it
        if spec is not None:
            local_workers.SPECS[tuple(job_overrides)] = spec
            try:
                local_workers.COSTS[tuple(job_overrides)] = estimated_cost(spec)
                record.analysis, record.treatment = spec.analysis, treatment_of(spec)
                data_key = json.dumps(dataclasses.asdict(spec.data), sort_keys=True, default=str)
                if data_key not in data_specs:
                    data_specs[data_key] = (spec.data, data_load.fingerprint(spec.data))
                record.fingerprint = data_specs[data_key][1]
                if spec.multiverse.draws:  # many small jobs on few panels: chained (a study's few large jobs balance better alone)
                    local_workers.SHARES[tuple(job_overrides)] = share_key(spec, record.fingerprint)
                record.job_key = job_key(spec, record.fingerprint)
                record.force = spec.force
            except Exception as err:  # recorded: the job itself will fail with the same message
                record.reason = f"{type(err).__name__}: {err}"
        records.append(record)
    return records, {k: v[0] for k, v in data_specs.items()}


def _share_bootstraps(records: list[JobRecord]) -> None:
    """Mediation jobs that resample the same firms the same way (other channels of one model):
    each one's bootstrap also sums the others' mediators, and they run in a row on one worker,
    so that the first draws and the others solve from its moments."""
    from eqexp.spec import with_bootstrap_shared

    groups: dict[str, list[tuple[str, ...]]] = {}
    for r in records:
        spec = local_workers.SPECS.get(tuple(r.overrides))
        key = bootstrap_share_key(spec, r.fingerprint) if spec is not None and not r.reason else None
        if key is not None:
            groups.setdefault(key, []).append(tuple(r.overrides))
    for key, jobs in groups.items():
        mediators = list(dict.fromkeys(local_workers.SPECS[o].mediator.variable for o in jobs))
        if len(mediators) < 2:
            continue
        for o in jobs:
            spec = local_workers.SPECS[o]
            local_workers.SPECS[o] = with_bootstrap_shared(spec, [m for m in mediators if m != spec.mediator.variable])
            local_workers.SHARES.setdefault(o, (key, 0))


def _build_data(data_specs: Iterable[Any]) -> list[Any]:
    """Build each data cache once, here, so that workers never race to build it; the specs built."""
    from eqexp.data import load as data_load

    built = []
    for spec in data_specs:
        try:
            key = data_load.fingerprint(spec)
            if (Path(spec.cache_dir) / key / "panel.parquet").exists():
                continue
            start = time.perf_counter()
            data_load.load(spec)
            built.append(spec)
            print(f"[eqexp] data '{spec.name}' built in {time.perf_counter() - start:.1f} s", flush=True)
        except Exception as err:  # the jobs that need it will fail and say why
            print(f"[eqexp] could not build data '{spec.name}': {err}", flush=True)
    return built


def start_sweep(cfg: DictConfig) -> SweepContext:
    """Everything the parent does before the first worker starts (see the package docstring)."""
    from hydra.core.global_hydra import GlobalHydra

    from eqexp import tracking

    start = time.perf_counter()
    check_launcher(cfg)
    root = Path(str(OmegaConf.select(cfg, "hydra.runtime.cwd", default=os.getcwd())))
    loader = GlobalHydra.instance().config_loader() if GlobalHydra.instance().is_initialized() else None
    parse_once(loader)  # every job is composed from the same files
    overrides = planned_overrides(cfg, loader)
    labels = job_labels(overrides) if overrides is not None else []
    workers = _launcher_workers(cfg, len(overrides) if overrides else None)
    threads = threads_per_worker(workers) if workers else None
    sweep_dir = _claim_sweep_dir(cfg)  # before composing: every job's config carries the directory
    multiverse = OmegaConf.select(cfg, "multiverse", default=None)
    ctx = SweepContext(
        sweep_dir=str(sweep_dir), root=str(root), labels=dict(enumerate(labels)), threads=threads,
        workers=workers, n_planned=len(overrides) if overrides is not None else None,
        multiverse=OmegaConf.to_container(multiverse, resolve=True) if multiverse is not None else None,
    )
    tspec = _tracking_spec(cfg)
    task_overrides = list(OmegaConf.to_container(cfg.hydra.overrides.task, resolve=False))
    if not tspec.enabled:
        tracking.discard_preloaded()
    figures.discard_preloaded()  # a sweep set by its config (hydra.mode): each worker draws its own jobs' figures
    parent = _parent_run(tspec, root, sweep_dir, task_overrides, ctx) if tspec.enabled else None  # MLflow loads meanwhile
    # A job that cannot be composed (a misspelt config group) stops the sweep here, before any job
    # runs; the parent run, already created, says so.
    try:
        warmup, composed = None, {}
        if _planned_launcher(cfg) and workers:
            # eqexp's launcher: the workers compose jobs and read the data while the jobs are
            # planned here. They are forked with the first job's panel (when cached), whose
            # pages they then share instead of each reading a copy of its own.
            if overrides and loader:
                composed[0] = compose_job(loader, cfg, overrides[0])
            first = composed[0][1] if composed else None
            warmup = local_workers.Warmup(workers, worker_env(threads), loader, cfg, [first.data] if first else [])
        records, data_specs = _compose_jobs(cfg, overrides, labels, warmup, composed) if overrides is not None and loader else ([], {})
        if workers and len(records) > workers:  # fewer jobs than workers: each bootstrap on a core of its own is sooner
            _share_bootstraps(records)
    except ConfigCompositionException:
        if parent is not None:
            parent.fail()
        raise
    if warmup:  # the workers read the cached data while this process waits for the parent run
        warmup.load(list(data_specs.values()))
    if parent is not None:
        ctx.tracking_uri = tracking.resolve_uri(tspec, root)
        ctx.experiment, ctx.artifact_root = tspec.experiment, tspec.artifact_root
        try:
            ctx.parent_run_id = parent.run_id()
        except Exception as err:
            parent.close()
            raise SweepError(tracking.store_error(ctx.tracking_uri, err)) from err
        ctx.job_keys = {r.num: r.job_key for r in records if r.job_key}
        ctx.earlier = parent.earlier(tspec.experiment, records)

    n = ctx.n_planned if ctx.n_planned is not None else "?"
    print(f"[eqexp] sweep of {n} jobs into {sweep_dir} (planned and validated in {time.perf_counter() - start:.1f} s)", flush=True)
    if workers:
        print(f"[eqexp] {workers} local workers × {threads} thread(s) each on {cores()} cores", flush=True)
    for record in records:
        note = f"  (will fail: {record.reason})" if record.reason else ""
        if ctx.earlier and ctx.earlier.get(record.num):
            note = f"  (skip: finished in run {ctx.earlier[record.num]})"
        print(f"[eqexp]   #{record.num} {record.label}{note}", flush=True)
    built = _build_data(data_specs.values())  # after the store's check: a long build comes after its error
    if warmup and built:
        warmup.load(built)
    if threads and not warmup:  # after the build, which may use every core; before any worker starts
        set_thread_env(threads)
    _write_json(sweep_dir / PLAN_FILE, {
        "context": dataclasses.asdict(ctx),
        "task_overrides": task_overrides,
        "jobs": [dataclasses.asdict(r) for r in records],
        "created": time.time(),
    })
    _OPEN_SWEEPS[str(sweep_dir)] = ctx
    if parent is not None:
        _LOGGERS[str(sweep_dir)] = runs.JobLogger(ctx, root, parent)
    return ctx


def _parent_run(tspec: Any, root: Path, sweep_dir: Path, task_overrides: list[str], ctx: SweepContext) -> runs.ParentRun:
    swept = [o for o in task_overrides if _is_sweep(o)] or task_overrides
    tags = {
        "eqexp.kind": "sweep",
        "eqexp.sweep_dir": str(sweep_dir),
        "eqexp.command": " ".join(["python run.py -m", *task_overrides])[:5000],
        "mlflow.note.content": f"Sweep of {ctx.n_planned} jobs; outputs in {sweep_dir}",
    }
    params = {"sweep.n_jobs": str(ctx.n_planned), "sweep.workers": str(ctx.workers), "sweep.threads": str(ctx.threads)}
    params.update({f"sweep.override.{i}": o[:6000] for i, o in enumerate(task_overrides[:90])})
    return runs.ParentRun(tspec, root, f"sweep: {' '.join(swept) or 'default'}"[:240], tags, params)


class SweepCallback(Callback):
    """Hydra callback (conf/config.yaml `hydra.callbacks`); a no-op for single runs."""

    def __init__(self) -> None:
        self.context: dict | None = None  # travels to the workers with Hydra's pickled context

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        stop.stop_on_sigterm()
        try:
            self.context = dataclasses.asdict(start_sweep(config))
        except SweepError as err:  # Hydra would only warn, and run every job without a plan
            print(f"[eqexp] {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except (MultiverseError, ConfigCompositionException) as err:  # a mistake in the sweep's YAML or an axis's
            print(f"[eqexp] {type(err).__name__}: {err}", file=sys.stderr, flush=True)  # option: said once, before anything runs
            raise SystemExit(2) from None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.context is not None:
            set_job_context(SweepContext.from_dict(self.context))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.context is not None:
            stop.recording()
            finish_sweep(Path(self.context["sweep_dir"]))
