"""One job of a sweep, where it runs (a local worker, a Ray task, a SLURM task): its status
records, skipping a job that already has an identical FINISHED run, its failure recorded
(never raised), its progress lines labelled with the job. A job writes its MLflow run down
(`run.json`); the sweep's parent logs it (`eqexp.sweep.runs`)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig

from eqexp.sweep import runs
from eqexp.sweep.plan import PlannedJob, job_key
from eqexp.sweep.records import FAILED, FINISHED, PLAN_FILE, SKIPPED, STARTED, JobRecord, SweepContext, write_status
from eqexp.sweep.threads import THREADS_ENV, cap_threads

log = logging.getLogger(__name__)


def context_for(hydra_cfg: Any) -> SweepContext:
    """The sweep's context in a job the launcher did not hand it to: read from the plan, else minimal."""
    sweep_dir = Path(str(hydra_cfg.sweep.dir)).resolve()
    try:
        return SweepContext.from_dict(json.loads((sweep_dir / PLAN_FILE).read_text())["context"])
    except (OSError, ValueError, KeyError, TypeError):
        return SweepContext(sweep_dir=str(sweep_dir), root=str(Path(hydra_cfg.runtime.cwd)))


def _earlier_run(ctx: SweepContext, num: int, key: str, spec: Any, root: Path) -> str | None:
    """The FINISHED run this job would repeat, as the parent looked it up (for this key and store)."""
    from eqexp import tracking

    if not spec.tracking.enabled or spec.force or ctx.earlier is None or ctx.job_keys.get(num) != key:
        return None
    return ctx.earlier.get(num) if tracking.resolve_uri(spec.tracking, root) == ctx.tracking_uri else None


def in_parent_store(spec: Any, ctx: SweepContext) -> Any:
    """The job's runs go to the parent run's store: on a node whose environment has another
    MLFLOW_TRACKING_URI, or none (a Ray worker started by `ray start`), as on the parent's."""
    if not (spec.tracking.enabled and ctx.tracking_uri):
        return spec
    tracking = replace(spec.tracking, uri=ctx.tracking_uri, experiment=ctx.experiment, artifact_root=ctx.artifact_root)
    return replace(spec, tracking=tracking)


class Labelled:
    """A text stream that starts each line with `[label] `: the progress lines of jobs that run
    side by side say whose they are."""

    def __init__(self, stream: TextIO, label: str):
        self.stream, self.prefix, self.at_start = stream, f"[{label}] ", True

    def write(self, text: str) -> int:
        for part in text.splitlines(keepends=True):
            self.stream.write(self.prefix + part if self.at_start else part)
            self.at_start = part.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def run_recorded(cfg: DictConfig, hydra_cfg: Any = None, ctx: SweepContext | None = None, spec: Any = None) -> JobRecord:
    """Run one job of a sweep and record its outcome; never raises for the job's own failure.
    `ctx` and `spec` as the parent planned them (eqexp's launcher hands them over), else read here."""
    from hydra.core.hydra_config import HydraConfig

    from eqexp import runner
    from eqexp.cache import PROCESS
    from eqexp.data import load as data_load
    from eqexp.model_runs import choices_of
    from eqexp.spec import load_spec

    hydra_cfg = hydra_cfg or HydraConfig.get()
    ctx = ctx or context_for(hydra_cfg)
    root, sweep_dir = Path(ctx.root), Path(ctx.sweep_dir)
    num, out_dir, overrides = int(hydra_cfg.job.num), Path(hydra_cfg.runtime.output_dir), list(hydra_cfg.overrides.task)
    label = ctx.labels.get(num) or ",".join(overrides) or "default"
    record = JobRecord(num=num, label=label, overrides=overrides, status=STARTED, dir=str(out_dir),
                       pid=os.getpid(), host=socket.gethostname(), started=time.time())
    cap_threads(ctx.threads or (int(os.environ[THREADS_ENV]) if os.environ.get(THREADS_ENV) else None))
    record.threads = {v: os.environ[v] for v in ("OMP_NUM_THREADS", "RAYON_NUM_THREADS", THREADS_ENV, "PYTHONHASHSEED") if v in os.environ}
    write_status(sweep_dir, record)
    total = ctx.n_planned if ctx.n_planned is not None else "?"
    print(f"[eqexp] job {num + 1}/{total} {label}: started (pid {record.pid})", flush=True)
    planned, spec = spec, None
    try:
        t0 = time.perf_counter()
        spec = in_parent_store(planned or load_spec(cfg), ctx)
        record.analysis, record.treatment = spec.analysis, spec.model.treatment
        record.fixed_effects, record.labels = list(spec.model.fixed_effects), dict(spec.report.labels)
        record.fingerprint = data_load.fingerprint(spec.data)
        record.job_key = job_key(spec, record.fingerprint)
        earlier_id = _earlier_run(ctx, num, record.job_key, spec, root)
        record.timings["resume_check"] = time.perf_counter() - t0
        if earlier_id:
            record.reused_run_id = earlier_id  # its results are copied here by the parent
            record.status = SKIPPED
            record.reason = f"identical spec and data finished in run {earlier_id}"
        else:
            tags = {"job_key": record.job_key, "eqexp.status": FINISHED, "eqexp.job_num": str(num), "eqexp.sweep_dir": str(sweep_dir)}
            t1 = time.perf_counter()
            with contextlib.redirect_stderr(Labelled(sys.stderr, label)):
                runner.run_job(spec, out_dir, root=root, run_name=label, tags=tags, log=False, choices=choices_of(hydra_cfg), cache=PROCESS)
            record.timings["run_job"] = time.perf_counter() - t1
            record.status = FINISHED
    except Exception as err:  # a failing job is recorded and never stops the others
        record.status = FAILED
        record.reason = f"{type(err).__name__}: {err}"
        text = traceback.format_exc()
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "traceback.txt").write_text(text)
        log.error("job %s (%s) failed:\n%s", num, label, text)  # into the job's log file
        try:
            runs.failure_record(cfg, spec, ctx, out_dir, record, root)
        except Exception as log_err:
            record.reason += f" [could not write the failure's MLflow run: {log_err}]"
    record.ended = time.time()
    record.seconds = record.ended - record.started
    write_status(sweep_dir, record)
    why = f": {record.reason}" if record.status != FINISHED else ""
    print(f"[eqexp] job {num + 1}/{total} {label}: {record.status} in {record.seconds:.1f} s{why}", flush=True)
    return record


def run_planned(job: PlannedJob, ctx: SweepContext, hydra_context: Any, state: Any) -> Any:
    """In a local worker: Hydra's `run_job` on the config the parent composed (as the joblib
    launcher's `execute_job`, minus composing), with Hydra's state as the parent had it, and
    `run_recorded` on the planned spec and context as the job's task."""
    import functools

    from hydra.core import utils as hydra_utils
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.singleton import Singleton
    from omegaconf import open_dict

    hydra_utils.setup_globals()
    Singleton.set_state(state)
    with open_dict(job.config):
        job.config.hydra.job.id, job.config.hydra.job.num = f"{job.config.hydra.job.name}_{job.num}", job.num
    HydraConfig.instance().set_config(job.config)
    return hydra_utils.run_job(hydra_context=hydra_context, config=job.config, job_dir_key="hydra.sweep.dir",
                               task_function=functools.partial(run_recorded, ctx=ctx, spec=job.spec), job_subdir_key="hydra.sweep.subdir")


def run_chain(chain: list[PlannedJob], ctx: SweepContext, hydra_context: Any, state: Any) -> list[Any]:
    """In a local worker: the jobs of a chain, in order."""
    return [run_planned(job, ctx, hydra_context, state) for job in chain]
