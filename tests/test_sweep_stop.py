"""A sweep stopped before its end: real signals to a real `python run.py -m` subprocess.

SIGTERM to the parent (as `kill` or a scheduler sends it) and SIGINT to the process group (as
Ctrl-C in a terminal does) both end the sweep with MLflow showing its parent run and the jobs
in flight KILLED, the jobs finished so far FINISHED, and nothing RUNNING. A sweep killed
outright (SIGKILL) is marked when it is resumed: tests/test_tracking_server.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import default_sigint

from eqexp import sweep

ROOT = Path(__file__).resolve().parents[1]
# 3 jobs of a few seconds each (a long mediation bootstrap), one at a time: the signal comes
# when one has finished and the next has run for a moment; the third never starts.
JOBS = ("data=synthetic_small", "mediator=humancapital", "mediator.bootstrap.draws=10000", "trim=none,p1,p5")
ONE_AT_A_TIME = {"joblib": ["hydra.launcher.n_jobs=1"], "ray": ["hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=1"]}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(small_cache) -> Path:
    return small_cache  # the session's data cache for synthetic_small (conftest.py)


def wait_for_a_job_in_flight(process: subprocess.Popen, sweep_dir: Path) -> dict[int, sweep.JobRecord]:
    """The job records once a job has finished and another has run for a moment."""
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        records = sweep.read_statuses(sweep_dir) if (sweep_dir / sweep.STATUS_DIR).exists() else {}
        started = [r for r in records.values() if r.status == "started" and time.time() - r.started > 0.3]
        if started and any(r.status == "finished" for r in records.values()):
            return records
        time.sleep(0.05)
    raise AssertionError("no job in flight after another had finished")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum, to_group, launcher, exit_code", [
    (signal.SIGTERM, False, "joblib", 143),
    (signal.SIGINT, True, "joblib", 130),
    (signal.SIGTERM, False, "ray", None),  # Ray's driver takes SIGTERM over (sys.exit): some failure code
], ids=["SIGTERM to the parent", "SIGINT to the process group", "SIGTERM to the parent on Ray"])
def test_a_stopped_sweep_leaves_no_run_running(tmp_path, cache, signum, to_group, launcher, exit_code):
    from mlflow.tracking import MlflowClient

    db, sweep_dir = tmp_path / "mlflow.db", tmp_path / "sweep"
    command = [sys.executable, "run.py", "-m", f"data.cache_dir={cache}", f"tracking.uri=sqlite:///{db}",
               f"tracking.artifact_root={tmp_path / 'mlartifacts'}", f"hydra.sweep.dir={sweep_dir}", *JOBS,
               *ONE_AT_A_TIME[launcher]]
    # a session of its own, so that the group's SIGINT reaches the sweep and its workers, not pytest
    with (tmp_path / "out.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   preexec_fn=default_sigint)
    at_signal = wait_for_a_job_in_flight(process, sweep_dir)
    if to_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    process.wait(timeout=120)
    out = (tmp_path / "out.log").read_text()
    assert process.returncode == exit_code if exit_code else process.returncode > 0, out[-3000:]
    assert launcher == "ray" or ("[eqexp] stopped by SIGTERM" if signum == signal.SIGTERM else "[eqexp] interrupted") in out

    in_flight = {n for n, r in at_signal.items() if r.status == "started"}
    finished = {n for n, r in at_signal.items() if r.status == "finished"}
    deadline = time.time() + 10  # the workers were killed: their jobs ended with the sweep
    while any(alive(at_signal[n].pid) for n in in_flight) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(alive(at_signal[n].pid) for n in in_flight)
    statuses = {r.num: r.status for r in sweep.job_records(sweep_dir)}
    summary = pd.read_csv(sweep_dir / "summary.csv").set_index("job").status.to_dict()
    assert statuses == summary  # no job ended after the sweep was recorded
    assert len(finished) == len(in_flight) == 1
    assert {n for n, s in statuses.items() if s == "never finished"} == set(range(3)) - finished

    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("eqexp").experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"]
    parent = next(r for r in runs if r.data.tags.get("eqexp.kind") == "sweep")
    assert parent.info.status == "KILLED"
    children = {int(r.data.tags["eqexp.job_num"]): r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert {n: c.info.status for n, c in children.items()} == {n: "FINISHED" if n in finished else "KILLED" for n in range(3)}
    for n in finished:
        assert children[n].data.metrics["n_models"] > 0


def test_a_sweep_whose_mlflow_process_was_killed_still_logs_every_run(tmp_path, cache):
    """The sweep's MLflow calls go to the command's MLflow process (tracking.MlflowProcess); killed
    (the OOM killer) while the jobs run, the parent logs the rest itself: every run FINISHED."""
    import psutil
    from mlflow.tracking import MlflowClient

    db, sweep_dir = tmp_path / "mlflow.db", tmp_path / "sweep"
    command = [sys.executable, "run.py", "-m", f"data.cache_dir={cache}", f"tracking.uri=sqlite:///{db}",
               f"tracking.artifact_root={tmp_path / 'mlartifacts'}", f"hydra.sweep.dir={sweep_dir}", *JOBS,
               *ONE_AT_A_TIME["joblib"]]
    with (tmp_path / "out.log").open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_a_job_in_flight(process, sweep_dir)
    mlflow_process = min(psutil.Process(process.pid).children(), key=lambda c: c.create_time())  # forked first, at the start
    mlflow_process.kill()
    process.wait(timeout=300)
    out = (tmp_path / "out.log").read_text()
    assert process.returncode == 0 and "could not" not in out, out[-3000:]
    client = MlflowClient(f"sqlite:///{db}")
    runs = client.search_runs([client.get_experiment_by_name("eqexp").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("eqexp.kind") == "sweep")
    jobs = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(int(r.data.tags["eqexp.job_num"]) for r in jobs) == [0, 1, 2]
    assert {r.info.status for r in runs} == {"FINISHED"} and all(r.data.metrics["n_models"] > 0 for r in jobs)


def test_a_job_run_whose_logging_died_with_its_sweep_is_logged_again_on_resume(tmp_path, cache):
    """The parent logs each job's run as the job ends; a parent killed in the middle of that leaves
    the run RUNNING and incomplete. The next sweep deletes it and logs the job again from its
    directory, complete, and marks the dead parent KILLED."""
    from mlflow.tracking import MlflowClient

    from eqexp.sweep.runs import close_abandoned
    from eqexp.tracking import OWNER_TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = subprocess.run([sys.executable, "run.py", "-m", "data=synthetic_small", f"data.cache_dir={cache}", "trim=none,p5",
                           f"tracking.uri={uri}", f"tracking.artifact_root={tmp_path / 'art'}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("eqexp").experiment_id
    runs = client.search_runs([experiment], max_results=1000)
    (parent,) = [r for r in runs if r.data.tags.get("eqexp.kind") == "sweep"]
    jobs = {r.data.tags["eqexp.job_num"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    partial = jobs["1"]
    models = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == partial.info.run_id]
    dead = f"{os.uname().nodename}:{2**22 + 1}"  # no such process
    for run_id in (parent.info.run_id, partial.info.run_id):  # as a parent SIGKILLed while logging job 1 leaves them
        client.update_run(run_id, status="RUNNING")
        client.set_tag(run_id, OWNER_TAG, dead)

    close_abandoned(uri, experiment)

    after = client.search_runs([experiment], max_results=1000)
    assert {r.info.run_id for r in after}.isdisjoint({partial.info.run_id, *(m.info.run_id for m in models)})  # deleted
    assert client.get_run(parent.info.run_id).info.status == "KILLED"
    again = [r for r in after if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id and r.data.tags.get("eqexp.job_num") == "1"]
    assert len(again) == 1 and again[0].info.status == "FINISHED" and again[0].data.metrics == partial.data.metrics
    assert len([r for r in after if r.data.tags.get("mlflow.parentRunId") == again[0].info.run_id]) == len(models) > 0
    assert not [r for r in after if r.info.status == "RUNNING"]
