"""One job of a sweep, in its worker (step 2 of the package docstring): its status
records, skipping a job that already has an identical FINISHED run, its failure recorded
(never raised), and the key results of its coefficients. A job writes its MLflow run down
(`run.json`); the sweep's parent logs it (`eqexp.sweep.runs`)."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from eqexp.sweep import runs
from eqexp.sweep.plan import job_key, treatment_of
from eqexp.sweep.records import FAILED, FINISHED, PLAN_FILE, SKIPPED, STARTED, JobRecord, SweepContext, write_status
from eqexp.sweep.threads import THREADS_ENV, cap_threads
from eqexp.sweep.workers import take_spec

log = logging.getLogger(__name__)

_JOB_CONTEXT: SweepContext | None = None  # set by on_job_start (set_job_context), in the process that runs the job


def set_job_context(ctx: SweepContext) -> None:
    """In the process that runs a job (the callback's `on_job_start`): the parent's context and its thread cap."""
    global _JOB_CONTEXT
    _JOB_CONTEXT = ctx
    cap_threads(_JOB_CONTEXT.threads)


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


def key_results(coefficients: pd.DataFrame, treatment: str | None) -> dict[str, Any]:
    """Treatment coefficient, t and N of the job's last model."""
    from eqexp.terms import base_variable, parse

    if coefficients is None or coefficients.empty or not treatment:
        return {}
    last = coefficients[coefficients.model == coefficients.model.iloc[-1]]
    rows = last[[base_variable(t) == treatment and not parse(t).squared for t in last.term]]
    if rows.empty:
        return {"model": last.model.iloc[0], "n_obs": int(last.n_obs.iloc[0])}
    row = rows.iloc[0]
    return {"model": row.model, "sample": row["sample"], "term": row.term, "estimate": float(row.estimate),
            "t": float(row.statistic), "n_obs": int(row.n_obs)}


def _earlier_run(ctx: SweepContext, num: int, key: str, spec: Any, root: Path) -> str | None:
    """The FINISHED run this job would repeat: as the parent looked it up, or (a job the parent
    did not plan, e.g. from another sweeper) looked up here."""
    if not spec.tracking.enabled or spec.force:
        return None
    from eqexp import tracking

    uri = tracking.resolve_uri(spec.tracking, root)
    if ctx.earlier is not None and ctx.job_keys.get(num) == key and uri == ctx.tracking_uri:
        return ctx.earlier.get(num)
    found = runs.find_finished_run(uri, spec.tracking.experiment, key)
    return found.info.run_id if found is not None else None


def in_parent_store(spec: Any, ctx: SweepContext) -> Any:
    """The job's runs go to the parent run's store: on a node whose environment has another
    MLFLOW_TRACKING_URI, or none (a Ray worker started by `ray start`), as on the parent's."""
    if not (spec.tracking.enabled and ctx.tracking_uri):
        return spec
    tracking = replace(spec.tracking, uri=ctx.tracking_uri, experiment=ctx.experiment, artifact_root=ctx.artifact_root)
    return replace(spec, tracking=tracking)


def run_sweep_job(cfg: DictConfig, hydra_cfg: Any, root: Path) -> JobRecord:
    """Run one job of a sweep and record its outcome; never raises for the job's own failure."""
    from eqexp import runner
    from eqexp.data import load as data_load
    from eqexp.model_runs import choices_of
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
        spec = in_parent_store(take_spec(num) or load_spec(cfg), ctx)
        record.analysis, record.treatment = spec.analysis, treatment_of(spec)
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
            runner.run_job(spec, out_dir, root=root, run_name=label, tags=tags, log=False, choices=choices_of(hydra_cfg))
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
