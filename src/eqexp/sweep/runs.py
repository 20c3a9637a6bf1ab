"""A sweep's MLflow runs, all logged by the sweep's parent process.

Loading MLflow costs a process seconds (its import and its store's schema check), more than
a typical job's own logging. So workers never load it: a job writes its run down
(`tracking.RunRecord`, `run.json` in its directory) and the parent, through an
MLflow process (`tracking.mlflow_process`) that loaded MLflow while Hydra composed the sweep, creates the parent run,
looks up earlier FINISHED runs of the planned jobs (resume), and at the end logs every job under the parent:
its own run (FINISHED or FAILED) as soon as the job has ended (`JobLogger`, a thread, while
the other jobs run), a reused run for a job skipped as already done (its results copied back
into the job's directory), a KILLED run for a job that never finished.

A sweep whose parent was killed before it could log (SIGKILL, a lost machine) leaves its
parent run RUNNING and its jobs' runs written down in their directories: the next sweep on
the same machine logs them and marks the runs KILLED (`close_abandoned`), before it looks
for earlier FINISHED runs, so that resuming it skips the jobs that had finished.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from eqexp.sweep.plan import is_sweep, task_config
from eqexp.sweep.records import FAILED, FINISHED, NEVER, SKIPPED, JobRecord, SweepContext, job_records, read_plan, read_statuses
from eqexp.tracking import OWNER_TAG, owner

_REUSED_ARTIFACTS = ("coefficients.csv", "tests.csv", "descriptives.csv", "rows.csv", "job.json", "tables", "multiverse.json")


class SweepError(RuntimeError):
    """A sweep that cannot start; the message says what to do."""


def tracking_spec(cfg: Any) -> Any:
    """The sweep's TrackingSpec, from its primary config."""
    from omegaconf import OmegaConf

    from eqexp.spec import TrackingSpec

    node = OmegaConf.select(cfg, "tracking", default=None)  # resolved where it is: ${outputs} is at the root
    merged = OmegaConf.merge(OmegaConf.structured(TrackingSpec), OmegaConf.to_container(node, resolve=True) if node is not None else {})
    return OmegaConf.to_object(merged)


def parent_run(tspec: Any, root: Path, sweep_dir: Path, task_overrides: list[str], ctx: SweepContext) -> "ParentRun":
    swept = [o for o in task_overrides if is_sweep(o)] or task_overrides
    tags = {"eqexp.kind": "sweep", "eqexp.sweep_dir": str(sweep_dir), "eqexp.command": " ".join(["python run.py -m", *task_overrides])[:5000],
            "mlflow.note.content": f"Sweep of {ctx.n_planned} jobs; outputs in {sweep_dir}"}
    params = {"sweep.n_jobs": str(ctx.n_planned), "sweep.workers": str(ctx.workers), "sweep.threads": str(ctx.threads)}
    params.update({f"sweep.override.{i}": o[:6000] for i, o in enumerate(task_overrides[:90])})
    return ParentRun(tspec, root, f"sweep: {' '.join(swept) or 'default'}"[:240], tags, params)


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def find_finished_run(uri: str, experiment: str, key: str):
    """The newest FINISHED run with this `job_key`, or None."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    return _newest_finished(mlflow_client, found.experiment_id, key) if found is not None else None


def _newest_finished(mlflow_client: Any, experiment_id: str, key: str):
    runs = mlflow_client.search_runs([experiment_id], filter_string=f"tags.job_key = '{key}' and attributes.status = 'FINISHED'",
                                   max_results=1, order_by=["attributes.start_time DESC"])
    return runs[0] if runs else None


class ParentRun:
    """The sweep's parent run, created as soon as the sweep starts by the MLflow process (which
    has loaded MLflow meanwhile; this process plans the jobs); `run_id()` waits for it and
    `earlier(records)` asks the same process for the planned jobs' earlier FINISHED runs."""

    def __init__(self, tspec: Any, root: Path, name: str, tags: dict[str, str], params: dict[str, str]):
        from eqexp import tracking

        self.uri = tracking.resolve_uri(tspec, root)
        self._process = tracking.mlflow_process()
        tags = {**tags, OWNER_TAG: owner()}  # this process ends the run: not the one creating it
        self._created = self._process.submit(create_parent_run, tspec, root, name, tags, params)
        self._alone = False  # logging here since the MLflow process was killed

    def run_id(self) -> str:
        return self._created.get()

    def earlier(self, experiment: str, records: list[JobRecord]) -> dict[int, str]:
        return self.call(earlier_runs, self.uri, experiment, records)

    def call(self, function: Any, *args: Any) -> Any:
        """`function(*args)` in the MLflow process (the sweep's later logging goes there too), or
        here if that process was killed: the runs are still logged, at the cost of loading MLflow."""
        if not self._process.alive():
            if not self._alone:  # a job run it was logging when killed is half there: logged again
                self._alone = True
                delete_partial_runs(self.uri, client(self.uri).get_run(self.run_id()))
            return function(*args)
        return self._process.submit(function, *args).get()

    def fail(self) -> None:
        """The sweep stops before any job: its parent run says FAILED."""
        try:
            self._process.submit(end_run, self.uri, self.run_id(), "FAILED").get()
        finally:
            self._process.close()

    def close(self) -> None:
        self._process.close()


def end_run(uri: str, run_id: str, status: str) -> None:
    client(uri).set_terminated(run_id, status=status)


def create_parent_run(tspec: Any, root: Path, name: str, tags: dict[str, str], params: dict[str, str]) -> str:
    """In the MLflow process: the parent run, then the runs stopped sweeps left RUNNING closed."""
    from mlflow.entities import Param

    from eqexp import tracking

    experiment_id = tracking.ensure_experiment(tspec, root)
    mlflow_client = client(tracking.resolve_uri(tspec, root))
    run = mlflow_client.create_run(experiment_id, run_name=name, tags={**tracking.environment_tags(root), **tags})
    mlflow_client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    close_abandoned(tracking.resolve_uri(tspec, root), experiment_id)
    return run.info.run_id


def earlier_runs(uri: str, experiment: str, records: list[JobRecord]) -> dict[int, str]:
    """For every planned job (not forced), its FINISHED run, if any: one look-up here, none in the workers."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    if found is None:
        return {}
    earlier = {}
    for r in records:
        run = _newest_finished(mlflow_client, found.experiment_id, r.job_key) if r.job_key and not r.force else None
        if run is not None:
            earlier[r.num] = run.info.run_id
    return earlier


def reuse_run(uri: str, earlier_id: str, out_dir: Path, parent_run_id: str | None, record: JobRecord) -> str | None:
    """A skipped job: copy the earlier run's results into its directory and show it under this sweep's parent."""
    from mlflow.entities import Metric, Param

    mlflow_client = client(uri)
    earlier = mlflow_client.get_run(earlier_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {a.path for a in mlflow_client.list_artifacts(earlier_id)}
    for name in _REUSED_ARTIFACTS:
        if name in names:
            mlflow_client.download_artifacts(earlier_id, name, str(out_dir))
    if not parent_run_id:
        return None
    tags = {
        "mlflow.parentRunId": parent_run_id,
        "eqexp.status": SKIPPED,
        "eqexp.reused_run_id": earlier_id,
        "eqexp.job_num": str(record.num),
        "mlflow.note.content": f"Skipped: identical spec and data already finished in run {earlier_id} (force=true re-runs it).",
        OWNER_TAG: owner(),
    }
    tags.update({k: v for k, v in earlier.data.tags.items() if k in ("data_fingerprint", "analysis")})
    run = mlflow_client.create_run(earlier.info.experiment_id, run_name=record.label, tags=tags)
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in earlier.data.metrics.items()]
    params = [Param(k, v) for k, v in earlier.data.params.items()]
    for i in range(0, len(metrics), 900):
        mlflow_client.log_batch(run.info.run_id, metrics=metrics[i : i + 900])
    for i in range(0, len(params), 100):
        mlflow_client.log_batch(run.info.run_id, params=params[i : i + 100])
    mlflow_client.set_terminated(run.info.run_id, status="FINISHED")
    return run.info.run_id


def log_jobs(ctx: SweepContext, records: list[JobRecord], root: Path) -> list[str | None]:
    """Every job's run under the parent: its own (from `run.json`), reused, or KILLED; the
    records' run ids, also returned (for a caller in another process)."""
    for r in records:
        if r.run_id:
            continue
        if r.status == SKIPPED and r.reused_run_id and r.dir:
            r.run_id = reuse_run(ctx.tracking_uri, r.reused_run_id, Path(r.dir), ctx.parent_run_id, r)
            continue
        r.run_id = _log_own_run(ctx, r, root)
    _record_never_finished(ctx.tracking_uri, ctx.parent_run_id, records)
    return [r.run_id for r in records]


def _log_own_run(ctx: SweepContext, r: JobRecord, root: Path) -> str | None:
    """The run a job wrote down (`run.json`), logged under the parent; None if it wrote none."""
    from eqexp.tracking import RunRecord, log_run

    record = RunRecord.read(Path(r.dir)) if r.dir else None
    if record is None:
        return None
    if r.status == NEVER:  # it wrote its run and died before its status said so
        record.status = "KILLED"
        record.tags["eqexp.status"] = NEVER
    return log_run(record, root, ctx.parent_run_id if record.uri == ctx.tracking_uri else None)


class JobLogger:
    """Logs each job's run as soon as its status says it ended (finished or failed), in a thread
    of the parent while the other jobs run, so that the sweep's end logs only what is left."""

    def __init__(self, ctx: SweepContext, root: Path, parent: ParentRun, interval: float = 0.25):
        self.ctx, self.root, self.parent, self.interval = ctx, root, parent, interval
        self.logged: dict[int, str] = {}  # job num -> its run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for num, r in read_statuses(Path(self.ctx.sweep_dir), skip=self.logged).items():
                if r.status not in (FINISHED, FAILED):
                    continue
                try:
                    run_id = self.parent.call(_log_own_run, self.ctx, r, self.root)
                except Exception:  # left to the sweep's end, which reports why
                    return
                if run_id:
                    self.logged[num] = run_id

    def stop(self, records: list[JobRecord]) -> None:
        """Stop logging (after the run in progress) and give `records` the runs already logged."""
        self._stop.set()
        self._thread.join()
        for r in records:
            r.run_id = r.run_id or self.logged.get(r.num)


def _record_never_finished(uri: str, parent_run_id: str, records: list[JobRecord]) -> None:
    """Jobs that never finished get a KILLED child run, so MLflow shows every planned job."""
    mlflow_client = client(uri)
    experiment_id = mlflow_client.get_run(parent_run_id).info.experiment_id
    for r in records:
        if r.status != NEVER or r.run_id:
            continue
        tags = {"mlflow.parentRunId": parent_run_id, "eqexp.status": NEVER, "eqexp.job_num": str(r.num),
                "job_key": r.job_key or "", "mlflow.note.content": r.reason, OWNER_TAG: owner()}
        run = mlflow_client.create_run(experiment_id, run_name=r.label, tags=tags)
        mlflow_client.set_terminated(run.info.run_id, status="KILLED")
        r.run_id = run.info.run_id


def finish_parent_run(ctx: SweepContext, metrics: dict[str, float], artifacts: list[Path], status: str) -> None:
    from mlflow.entities import Metric

    mlflow_client = client(ctx.tracking_uri)
    now = int(time.time() * 1000)
    mlflow_client.log_batch(ctx.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    for path in artifacts:
        if path.exists():
            mlflow_client.log_artifact(ctx.parent_run_id, str(path))
    mlflow_client.set_terminated(ctx.parent_run_id, status=status)


def failure_record(cfg: Any, spec: Any, ctx: SweepContext, out_dir: Path, record: JobRecord, root: Path) -> None:
    """A failed job's run (status FAILED, its directory with traceback.txt as artifacts), written for the parent."""
    from omegaconf import OmegaConf

    from eqexp import tracking
    from eqexp.spec import TrackingSpec

    if spec is not None:
        tspec = spec.tracking
        if not tspec.enabled:
            return
    elif ctx.tracking_uri:
        tspec = TrackingSpec(uri=ctx.tracking_uri, experiment=ctx.experiment or "eqexp", artifact_root=ctx.artifact_root or TrackingSpec().artifact_root)
    else:
        return
    tree = OmegaConf.to_container(OmegaConf.structured(spec)) if spec is not None else OmegaConf.to_container(task_config(cfg), resolve=False)
    tags = {"job_key": record.job_key or "", "eqexp.status": FAILED, "eqexp.job_num": str(record.num),
            "eqexp.error": record.reason[:4000], "mlflow.note.content": f"Failed: {record.reason[:4000]}"}
    tracking.run_record(tspec, root, record.label, tracking.flatten(tree), {}, tags, out_dir, status="FAILED").save()


def _gone(run: Any) -> bool:
    """Is the process that owns this RUNNING run gone? Known only on its own machine."""
    host, _, pid = run.data.tags.get(OWNER_TAG, "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _log_abandoned_jobs(parent: Any) -> None:
    """A dead sweep's jobs, from their directories, under its parent run: those it had logged
    are kept; one it was logging when it died (still RUNNING) is deleted and logged again."""
    sweep_dir = Path(parent.data.tags.get("eqexp.sweep_dir", ""))
    plan = read_plan(sweep_dir) if sweep_dir.is_dir() else {}
    ctx = SweepContext.from_dict(plan["context"]) if plan else None
    if ctx is None or ctx.parent_run_id != parent.info.run_id:  # gone, or taken by another sweep since
        return
    kept = delete_partial_runs(ctx.tracking_uri, parent)  # its logging died with the sweep: logged again below
    logged = {c.data.tags.get("eqexp.job_num"): c.info.run_id for c in kept}
    records = job_records(sweep_dir)
    for r in records:
        r.run_id = logged.get(str(r.num))
    log_jobs(ctx, records, Path(ctx.root))


def delete_partial_runs(uri: str, parent: Any) -> list:
    """Delete the job runs under `parent` whose logging died midway (still RUNNING: a job's run is
    created and ended in one go); return the other job runs."""
    children = _children(uri, parent)
    for partial in [c for c in children if c.info.status == "RUNNING"]:
        _delete_with_children(uri, partial)
    return [c for c in children if c.info.status != "RUNNING"]


def _children(uri: str, run: Any) -> list:
    return client(uri).search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'",
                                   max_results=10000)


def _delete_with_children(uri: str, run: Any) -> None:
    mlflow_client = client(uri)
    for child in _children(uri, run):
        mlflow_client.delete_run(child.info.run_id)
    mlflow_client.delete_run(run.info.run_id)


def close_abandoned(uri: str, experiment_id: str) -> None:
    """Mark KILLED the runs left RUNNING by processes of this machine that are gone; a dead
    sweep's jobs are logged first. Never fails the sweep that calls it: it says what it could not do."""
    try:
        mlflow_client = client(uri)
        running = mlflow_client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=10000)
        abandoned = [r for r in running if _gone(r)]
        for run in abandoned:
            if run.data.tags.get("eqexp.kind") == "sweep":
                _log_abandoned_jobs(run)
        active = {r.info.run_id for r in mlflow_client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=10000)}
        abandoned = [r for r in abandoned if r.info.run_id in active]  # not the partial job runs deleted above
        for run in abandoned:
            note = run.data.tags.get("mlflow.note.content", "")
            why = f"Marked KILLED by a later sweep: the process that ran it ({run.data.tags[OWNER_TAG]}) was gone."
            mlflow_client.set_tag(run.info.run_id, "mlflow.note.content", f"{note}\n\n{why}".strip())
            mlflow_client.set_terminated(run.info.run_id, status="KILLED")
        if abandoned:
            print(f"[eqexp] {len(abandoned)} run(s) left RUNNING by stopped processes marked KILLED", flush=True)
    except Exception as err:
        print(f"[eqexp] could not close the runs of stopped sweeps: {type(err).__name__}: {err}", flush=True)
