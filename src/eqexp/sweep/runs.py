"""A sweep's MLflow runs, all logged by its parent, through the command's MLflow process
(`tracking.mlflow_process`, which loaded MLflow while Hydra composed): workers never load
MLflow; a job writes its run down (`tracking.RunRecord`, `run.json`). The parent creates the
parent run, looks up the planned jobs' earlier FINISHED runs (resume), logs each job's run as
soon as the job ends (`JobLogger`), and at the end a reused run for a skipped job and a KILLED
run for one that never finished. A sweep killed outright leaves its parent RUNNING: the next
sweep on the same machine logs its jobs and marks its runs KILLED (`close_abandoned`)."""

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


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


class ParentRun:
    """The sweep's parent run, created by the MLflow process while this one plans; `call` sends
    the sweep's later MLflow work there too, or does it here once that process was killed."""

    def __init__(self, tspec: Any, root: Path, sweep_dir: Path, task_overrides: list[str], ctx: SweepContext):
        from eqexp import tracking

        swept = [o for o in task_overrides if is_sweep(o)] or task_overrides
        tags = {"eqexp.kind": "sweep", "eqexp.sweep_dir": str(sweep_dir), "eqexp.command": " ".join(["python run.py -m", *task_overrides])[:5000],
                "mlflow.note.content": f"Sweep of {ctx.n_planned} jobs; outputs in {sweep_dir}", OWNER_TAG: owner()}
        params = {"sweep.n_jobs": str(ctx.n_planned), "sweep.workers": str(ctx.workers), "sweep.threads": str(ctx.threads)}
        params.update({f"sweep.override.{i}": o[:6000] for i, o in enumerate(task_overrides[:90])})
        self.uri, self._process, self._alone = tracking.resolve_uri(tspec, root), tracking.mlflow_process(), False
        self._created = self._process.submit(create_parent_run, tspec, root, f"sweep: {' '.join(swept) or 'default'}"[:240], tags, params)

    def run_id(self) -> str:
        return self._created.get()

    def call(self, function: Any, *args: Any) -> Any:
        if not self._process.alive():
            if not self._alone:  # a job run it was logging when killed is half there: logged again
                self._alone = True
                delete_partial_runs(self.uri, client(self.uri).get_run(self.run_id()))
            return function(*args)
        return self._process.submit(function, *args).get()

    def fail(self) -> None:
        """The sweep stops before any job: its parent run says FAILED."""
        try:
            self.call(end_run, self.uri, self.run_id(), "FAILED")
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

    experiment_id, uri = tracking.ensure_experiment(tspec, root), tracking.resolve_uri(tspec, root)
    run = client(uri).create_run(experiment_id, run_name=name, tags={**tracking.environment_tags(root), **tags})
    client(uri).log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    close_abandoned(uri, experiment_id)
    return run.info.run_id


def earlier_runs(uri: str, experiment: str, records: list[JobRecord]) -> dict[int, str]:
    """For every planned job (not forced), its newest FINISHED run, if any."""
    mlflow_client = client(uri)
    found = mlflow_client.get_experiment_by_name(experiment)
    earlier = {}
    for r in records if found is not None else []:
        query = f"tags.job_key = '{r.job_key}' and attributes.status = 'FINISHED'"
        runs = mlflow_client.search_runs([found.experiment_id], query, max_results=1, order_by=["attributes.start_time DESC"]) \
            if r.job_key and not r.force else []
        if runs:
            earlier[r.num] = runs[0].info.run_id
    return earlier


def reuse_run(uri: str, earlier_id: str, out_dir: Path, parent_run_id: str | None, record: JobRecord) -> str | None:
    """A skipped job: copy the earlier run's results into its directory and show it under this sweep's parent."""
    from mlflow.entities import Metric, Param

    mlflow_client = client(uri)
    earlier = mlflow_client.get_run(earlier_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = {a.path for a in mlflow_client.list_artifacts(earlier_id)}
    for name in (n for n in _REUSED_ARTIFACTS if n in names):
        mlflow_client.download_artifacts(earlier_id, name, str(out_dir))
    if not parent_run_id:
        return None
    tags = {"mlflow.parentRunId": parent_run_id, "eqexp.status": SKIPPED, "eqexp.reused_run_id": earlier_id, "eqexp.job_num": str(record.num),
            "mlflow.note.content": f"Skipped: identical spec and data already finished in run {earlier_id} (force=true re-runs it).",
            OWNER_TAG: owner(), **{k: v for k, v in earlier.data.tags.items() if k in ("data_fingerprint", "analysis")}}
    run_id = mlflow_client.create_run(earlier.info.experiment_id, run_name=record.label, tags=tags).info.run_id
    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in earlier.data.metrics.items()]
    params = [Param(k, v) for k, v in earlier.data.params.items()]
    for i in range(0, max(len(metrics), len(params)), 100):  # MLflow takes at most 1000 metrics and 100 params a batch
        mlflow_client.log_batch(run_id, metrics=metrics[i : i + 100], params=params[i : i + 100])
    mlflow_client.set_terminated(run_id, status="FINISHED")
    return run_id


def log_jobs(ctx: SweepContext, records: list[JobRecord], root: Path) -> list[str | None]:
    """Every job's run under the parent: its own (from `run.json`), reused, or KILLED; the
    records' run ids, also returned (for a caller in another process)."""
    for r in (r for r in records if not r.run_id):
        if r.status == SKIPPED and r.reused_run_id and r.dir:
            r.run_id = reuse_run(ctx.tracking_uri, r.reused_run_id, Path(r.dir), ctx.parent_run_id, r)
        else:
            r.run_id = _log_own_run(ctx, r, root)
    mlflow_client = client(ctx.tracking_uri)
    experiment_id = mlflow_client.get_run(ctx.parent_run_id).info.experiment_id
    for r in (r for r in records if r.status == NEVER and not r.run_id):  # MLflow shows every planned job
        tags = {"mlflow.parentRunId": ctx.parent_run_id, "eqexp.status": NEVER, "eqexp.job_num": str(r.num),
                "job_key": r.job_key or "", "mlflow.note.content": r.reason, OWNER_TAG: owner()}
        r.run_id = mlflow_client.create_run(experiment_id, run_name=r.label, tags=tags).info.run_id
        mlflow_client.set_terminated(r.run_id, status="KILLED")
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
    """Logs each job's run as soon as its status says it ended, in a thread of the parent while
    the other jobs run, so that the sweep's end logs only what is left."""

    def __init__(self, ctx: SweepContext, root: Path, parent: ParentRun, interval: float = 0.25):
        self.ctx, self.root, self.parent, self.interval = ctx, root, parent, interval
        self.logged: dict[int, str] = {}  # job num -> its run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for num, r in read_statuses(Path(self.ctx.sweep_dir), skip=self.logged).items():
                try:
                    run_id = self.parent.call(_log_own_run, self.ctx, r, self.root) if r.status in (FINISHED, FAILED) else None
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


def finish_parent_run(ctx: SweepContext, metrics: dict[str, float], artifacts: list[Path], status: str) -> None:
    from mlflow.entities import Metric

    mlflow_client, now = client(ctx.tracking_uri), int(time.time() * 1000)
    mlflow_client.log_batch(ctx.parent_run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    for path in (p for p in artifacts if p.exists()):
        mlflow_client.log_artifact(ctx.parent_run_id, str(path))
    mlflow_client.set_terminated(ctx.parent_run_id, status=status)


def failure_record(cfg: Any, spec: Any, ctx: SweepContext, out_dir: Path, record: JobRecord, root: Path) -> None:
    """A failed job's run (status FAILED, its directory with traceback.txt as artifacts), written for the parent."""
    from omegaconf import OmegaConf

    from eqexp import tracking
    from eqexp.spec import TrackingSpec

    if spec is not None and not spec.tracking.enabled or spec is None and not ctx.tracking_uri:
        return
    tspec = spec.tracking if spec is not None else TrackingSpec(uri=ctx.tracking_uri, experiment=ctx.experiment or "eqexp",
                                                                 artifact_root=ctx.artifact_root or TrackingSpec().artifact_root)
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
        pass
    return False


def _log_abandoned_jobs(parent: Any) -> None:
    """A dead sweep's jobs, from their directories, under its parent run: those it had logged
    are kept; one it was logging when it died (still RUNNING) is deleted and logged again."""
    sweep_dir = Path(parent.data.tags.get("eqexp.sweep_dir", ""))
    plan = read_plan(sweep_dir) if sweep_dir.is_dir() else {}
    ctx = SweepContext.from_dict(plan["context"]) if plan else None
    if ctx is None or ctx.parent_run_id != parent.info.run_id:  # gone, or taken by another sweep since
        return
    logged = {c.data.tags.get("eqexp.job_num"): c.info.run_id for c in delete_partial_runs(ctx.tracking_uri, parent)}
    records = job_records(sweep_dir)
    for r in records:
        r.run_id = logged.get(str(r.num))
    log_jobs(ctx, records, Path(ctx.root))


def delete_partial_runs(uri: str, parent: Any) -> list:
    """Delete the job runs under `parent` whose logging died midway (still RUNNING: a job's run is
    created and ended in one go), with their model runs; return the other job runs."""
    children = _children(uri, parent)
    for partial in (c for c in children if c.info.status == "RUNNING"):
        for run in [*_children(uri, partial), partial]:
            client(uri).delete_run(run.info.run_id)
    return [c for c in children if c.info.status != "RUNNING"]


def _children(uri: str, run: Any) -> list:
    return client(uri).search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'",
                                   max_results=10000)


def close_abandoned(uri: str, experiment_id: str) -> None:
    """Mark KILLED the runs left RUNNING by processes of this machine that are gone; a dead
    sweep's jobs are logged first. Never fails the sweep that calls it: it says what it could not do."""
    try:
        mlflow_client = client(uri)
        running = lambda: mlflow_client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=10000)  # noqa: E731
        abandoned = [r for r in running() if _gone(r)]
        for run in (r for r in abandoned if r.data.tags.get("eqexp.kind") == "sweep"):
            _log_abandoned_jobs(run)
        active = {r.info.run_id for r in running()}
        abandoned = [r for r in abandoned if r.info.run_id in active]  # not the partial job runs deleted above
        for run in abandoned:
            why = f"Marked KILLED by a later sweep: the process that ran it ({run.data.tags[OWNER_TAG]}) was gone."
            mlflow_client.set_tag(run.info.run_id, "mlflow.note.content", f"{run.data.tags.get('mlflow.note.content', '')}\n\n{why}".strip())
            mlflow_client.set_terminated(run.info.run_id, status="KILLED")
        if abandoned:
            print(f"[eqexp] {len(abandoned)} run(s) left RUNNING by stopped processes marked KILLED", flush=True)
    except Exception as err:
        print(f"[eqexp] could not close the runs of stopped sweeps: {type(err).__name__}: {err}", flush=True)
