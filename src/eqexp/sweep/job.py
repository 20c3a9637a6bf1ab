"""One job of a sweep, in its worker (step 2 of the package docstring): its status
records, the reuse of an identical FINISHED run, its failure recorded (never raised),
and the key results of its coefficients."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from eqexp.sweep.plan import job_key, task_config, treatment_of
from eqexp.sweep.records import FAILED, FINISHED, PLAN_FILE, SKIPPED, STARTED, JobRecord, SweepContext, write_status
from eqexp.sweep.threads import THREADS_ENV, cap_threads
from eqexp.sweep.workers import release_memory

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
    release_memory()
    why = f": {record.reason}" if record.status != FINISHED else ""
    print(f"[eqexp] job {num + 1}/{total} {label}: {record.status} in {record.seconds:.1f} s{why}", flush=True)
    return record
