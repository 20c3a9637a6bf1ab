"""A shared MLflow store on a real PostgreSQL server (Debian's package): behind MLflow's
tracking server exactly as the README's "Scaling out" section sets it up (its commands are
read from the README), and as a database URI given directly.

Against each, a 12-job sweep (on the local Ray launcher and on joblib): every run, parameter,
metric and artifact arrives, compared with the jobs' own files; a job killed mid-sweep (a Ray
worker, or the whole sweep with SIGKILL) is re-run by resuming, and nothing stays RUNNING.

`make test` installs PostgreSQL (`make postgres`) and its driver (the `postgres` extra). The
server runs on a free local port in a temporary directory, as the `postgres` user when the
tests run as root (initdb refuses root), and is stopped at the end. If it cannot be started,
the tests fail and say why.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pandas as pd
import pytest
from omegaconf import OmegaConf

from eqexp import sweep
from eqexp.spec import load_spec
from eqexp.sweep import runs
from eqexp.tracking import OWNER_TAG, flatten, shown, store_error, ui_hint

ROOT = Path(__file__).resolve().parents[1]
PG_ROOT = Path("/usr/lib/postgresql")
PG_USER = "eqexp"  # the cluster's superuser; local connections are trusted


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin() -> Path:
    """The newest installed PostgreSQL's programs."""
    found = sorted(PG_ROOT.glob("*/bin/pg_ctl"), key=lambda p: tuple(int(x) for x in p.parts[-3].split(".")))
    if not found:
        pytest.fail(f"PostgreSQL is not installed (no {PG_ROOT}/*/bin/pg_ctl): run `make postgres` (apt-get install postgresql).")
    return found[-1].parent


def run_or_fail(command: list[str], log: Path | None = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode:
        extra = log.read_text()[-2000:] if log is not None and log.exists() else ""
        pytest.fail(f"PostgreSQL could not be started: {shlex.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}{extra}")


@pytest.fixture(scope="module")
def postgres() -> Iterator[Callable[[str], str]]:
    """A PostgreSQL server for this module; yields `database(name)`: a new database's URI."""
    try:
        import psycopg  # noqa: F401  (what SQLAlchemy uses for postgresql:// URIs)
    except ImportError:
        pytest.fail('The PostgreSQL driver is not installed: pip install -e ".[postgres]" (make test does).')
    programs = pg_bin()
    # in /tmp, not pytest's tmp_path: the postgres user must reach it, and a socket path is short
    base = Path(tempfile.mkdtemp(prefix="eqexp-pg-", dir="/tmp"))
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(base, "postgres")
    data, log, port = base / "data", base / "server.log", free_port()
    run_or_fail([*as_user, str(programs / "initdb"), "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync"])
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    run_or_fail([*as_user, str(programs / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start"], log)

    def database(name: str) -> str:
        run_or_fail([str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, name])
        return f"postgresql://{PG_USER}@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        subprocess.run([*as_user, str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def readme_set_up(values: dict[str, str]) -> tuple[list[str], str, list[str]]:
    """The README's "Scaling out" commands with `values` put in: the `mlflow server` command,
    the tracking URI exported where sweeps start, and the sweep."""
    section = (ROOT / "README.md").read_text().split("## Scaling out", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    for placeholder, value in values.items():
        assert placeholder in block, f"the README's set-up no longer says {placeholder}"
        block = block.replace(placeholder, value)
    lines = [shlex.split(line, comments=True) for line in block.splitlines()]
    server = next(words for words in lines if words[:2] == ["mlflow", "server"])
    exported = next(words[1] for words in lines if words[:1] == ["export"])
    sweep_command = next(words for words in lines if words[:2] == ["python", "run.py"])
    assert exported.startswith("MLFLOW_TRACKING_URI=")
    return server, exported.split("=", 1)[1], sweep_command


def wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow server exited with {server.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer {url} within {timeout} s")


def stop_group(process: subprocess.Popen) -> None:
    """Stop a process that leads its own group, and everything it started."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # helpers that outlive it (MLflow's job consumers)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


# --- sweeps -------------------------------------------------------------------------------


def start_sweep(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """The sweep in a session of its own, its output in `log` (a pipe nobody reads would fill up)."""
    with log.open("w") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill_mid_sweep(process: subprocess.Popen, sweep_dir: Path, kill: Callable[[sweep.JobRecord], None]) -> int:
    """Once a job has finished and another has run for a moment, `kill` it; return its number."""
    deadline = time.time() + 600
    while process.poll() is None and time.time() < deadline:
        records = sweep.read_statuses(sweep_dir) if (sweep_dir / sweep.STATUS_DIR).exists() else {}
        running = [r for r in records.values() if r.status == "started" and time.time() - r.started > 0.3]
        if running and any(r.status == "finished" for r in records.values()):
            kill(running[0])
            return running[0].num
        time.sleep(0.05)
    raise AssertionError("no job to kill mid-sweep")


def runs_by_id(client) -> dict:
    experiment = client.get_experiment_by_name("eqexp")
    return {r.info.run_id: r for r in client.search_runs([experiment.experiment_id], max_results=10000)}


def parents_of(runs: dict) -> list:
    return sorted((r for r in runs.values() if r.data.tags.get("eqexp.kind") == "sweep"), key=lambda r: r.info.start_time)


def children_of(runs: dict, parent) -> dict[int, object]:
    return {int(r.data.tags["eqexp.job_num"]): r for r in runs.values() if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}


def artifact_files(client, run_id: str, path: str | None = None) -> set[str]:
    files = set()
    for a in client.list_artifacts(run_id, path):
        files |= artifact_files(client, run_id, a.path) if a.is_dir else {a.path}
    return files


def job_dir(run) -> Path:
    """Where the job of this run ran (its sweep directory and number are tags of the run)."""
    records = {r.num: r for r in sweep.job_records(Path(run.data.tags["eqexp.sweep_dir"]))}
    return Path(records[int(run.data.tags["eqexp.job_num"])].dir)


def assert_run_matches_its_job(client, run, uri: str) -> None:
    """Every param, metric and file of the job's own directory is in its run."""
    directory = job_dir(run)
    spec = load_spec(OmegaConf.load(directory / ".hydra" / "config.yaml"))
    build = json.loads((directory / "build_log.json").read_text())["options"]
    expected = flatten(OmegaConf.to_container(OmegaConf.structured(spec))) | flatten({"build": build})
    params = run.data.params
    assert {k: v for k, v in params.items() if not k.startswith("tracking.")} == {k: v for k, v in expected.items() if not k.startswith("tracking.")}
    assert params["tracking.uri"] == uri  # the parent's store, whatever the worker's environment said
    coefs = pd.read_csv(directory / "coefficients.csv")
    nested = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    models = {r.data.params["fit.column"]: r.data.metrics for r in nested if r.data.tags.get("eqexp.kind") == "model"}
    assert sorted(models) == sorted(set(coefs.model))  # each model's numbers in its nested run
    for model, metrics in models.items():
        for row in coefs[coefs.model == model].itertuples():
            assert metrics[f"coef.{row.term}"] == pytest.approx(row.estimate, rel=1e-12)
            assert metrics[f"se.{row.term}"] == pytest.approx(row.std_error, rel=1e-12)
        assert metrics["n_obs"] == coefs[coefs.model == model].n_obs.iloc[0]
    local = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()} - {"job.json"}
    assert {"coefficients.csv", "tables/table.md", "run.json"} <= local <= artifact_files(client, run.info.run_id)


def assert_resumed_sweep_complete(client, runs: dict, resumed_dir: Path, uri: str) -> None:
    """The resumed sweep shows all 12 jobs FINISHED, each with the results of the run that computed it."""
    resumed = parents_of(runs)[-1]
    assert resumed.info.status == "FINISHED" and resumed.data.metrics["jobs_planned"] == 12
    children = children_of(runs, resumed)
    records = {r.num: r for r in sweep.job_records(resumed_dir)}
    assert sorted(children) == sorted(records) == list(range(12))
    for num, child in children.items():
        assert child.info.status == "FINISHED" and child.info.run_name == records[num].label
        source = runs[records[num].reused_run_id] if records[num].status == "skipped" else child
        assert source.info.status == "FINISHED" and source.data.tags["job_key"] == records[num].job_key
        assert_run_matches_its_job(client, source, uri)
        assert child.data.metrics == source.data.metrics and child.data.params == source.data.params


# --- tests --------------------------------------------------------------------------------


def test_messages_name_the_store_without_its_password_and_say_what_to_do():
    uri = "postgresql://eqexp:s3cret@dbhost:5432/eqexp"
    assert shown(uri) == "postgresql://eqexp:***@dbhost:5432/eqexp" and shown("sqlite:////a/b.db") == "sqlite:////a/b.db"
    missing = store_error(uri, ModuleNotFoundError("No module named 'psycopg'"))
    assert "s3cret" not in missing and 'pip install -e ".[postgres]"' in missing
    assert "is up" in store_error("http://trackinghost:5000", ConnectionError("refused"))
    assert ui_hint("http://trackinghost:5000") == "open http://trackinghost:5000"
    assert ui_hint(uri) == "mlflow ui --backend-store-uri postgresql://eqexp:***@dbhost:5432/eqexp"


def test_a_run_is_abandoned_only_when_its_process_on_this_machine_is_gone():
    from types import SimpleNamespace

    def run(owner: str) -> SimpleNamespace:
        return SimpleNamespace(data=SimpleNamespace(tags={OWNER_TAG: owner}))

    ended = subprocess.Popen(["true"])
    ended.wait()  # its process id names no process now
    here = socket.gethostname()
    assert runs._gone(run(f"{here}:{ended.pid}"))
    assert not runs._gone(run(f"{here}:{os.getpid()}"))
    assert not runs._gone(run(f"another-machine:{ended.pid}"))  # cannot be known from here
    assert not runs._gone(run(""))  # not logged by eqexp


@pytest.fixture(scope="module")
def cache(small_cache) -> Path:
    return small_cache  # the session's data cache for synthetic_small (conftest.py)


@pytest.mark.slow
def test_ray_sweep_through_the_readme_tracking_server(tmp_path, postgres, cache):
    """The README's set-up on a 12-job Ray sweep; a Ray worker killed mid-job; the resume completes it."""
    from mlflow.tracking import MlflowClient

    port = free_port()
    server_command, uri, sweep_command = readme_set_up({
        "postgresql://eqexp:PASSWORD@localhost:5432/eqexp": postgres("server"),
        "/srv/eqexp/mlartifacts": str(tmp_path / "served"),
        "--host 0.0.0.0": "--host 127.0.0.1",
        "--port 5000": f"--port {port}",
        "trackinghost:5000": f"127.0.0.1:{port}",
        "/shared/eqexp/cache": str(cache),
    })
    # one web worker and no job consumers (MLflow's GenAI jobs, unused here): 2 cores
    server_env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server_log = tmp_path / "server.log"
    with server_log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", *server_command, "--workers", "1"], env=server_env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(uri, server, server_log)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "HYDRA_FULL_ERROR": "0"}
        # Ray's workers see another store in their environment, as a node without the variable would
        elsewhere = f"+hydra.launcher.ray.remote.runtime_env.env_vars.MLFLOW_TRACKING_URI=sqlite:///{tmp_path / 'elsewhere.db'}"
        command = [sys.executable, *sweep_command[1:], "data=synthetic_small", elsewhere]

        first = start_sweep([*command, f"hydra.sweep.dir={tmp_path / 'first'}"], env, tmp_path / "first.log")
        killed = kill_mid_sweep(first, tmp_path / "first", lambda r: os.kill(r.pid, signal.SIGKILL))  # the Ray worker dies
        first.wait(timeout=600)
        out = (tmp_path / "first.log").read_text()
        assert first.returncode != 0 and "Ray Launcher is launching 12 jobs" in out, out[-3000:]
        assert sweep.job_records(tmp_path / "first")[killed].status == "never finished"

        second = subprocess.run([*command, f"hydra.sweep.dir={tmp_path / 'second'}"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
        assert f"open {uri}" in second.stdout  # where to see the runs
        client = MlflowClient(uri)
        runs = runs_by_id(client)
        assert not [r for r in runs.values() if r.info.status == "RUNNING"]
        first_parent, _ = parents_of(runs)
        assert first_parent.info.status == "KILLED"
        assert children_of(runs, first_parent)[killed].info.status == "KILLED"
        assert sweep.job_records(tmp_path / "second")[killed].status == "finished"  # re-run by the resume
        assert_resumed_sweep_complete(client, runs, tmp_path / "second", uri)
        experiment = client.get_experiment_by_name("eqexp")
        assert experiment.artifact_location.startswith("mlflow-artifacts:")  # the server holds the files
        computed = [r for r in runs.values() if r.data.tags.get("eqexp.status") == "finished"]
        assert len(computed) == 12  # each job computed once: before the kill, or by the resume
        for run in computed:
            assert (tmp_path / "served" / experiment.experiment_id / run.info.run_id / "artifacts" / "coefficients.csv").exists()
        assert not (tmp_path / "elsewhere.db").exists()
    finally:
        stop_group(server)


@pytest.mark.slow
def test_joblib_sweep_on_postgresql_killed_with_sigkill_then_resumed(tmp_path, postgres, cache):
    """A 12-job sweep writing to the database directly, killed outright (SIGKILL to the sweep and its
    workers): the resume marks its runs KILLED, logs the jobs it had finished and runs only the rest."""
    from mlflow.tracking import MlflowClient

    uri = postgres("direct")
    command = [sys.executable, "run.py", "-m", "data=synthetic_small", f"data.cache_dir={cache}", f"tracking.uri={uri}",
               f"tracking.artifact_root={tmp_path / 'mlartifacts'}", "trim=none,p1,p5", "lags=none,l1", "vcov=firm,robust"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    first = start_sweep([*command, f"hydra.sweep.dir={tmp_path / 'first'}"], env, tmp_path / "first.log")
    kill_mid_sweep(first, tmp_path / "first", lambda r: os.killpg(first.pid, signal.SIGKILL))
    first.wait(timeout=60)
    client = MlflowClient(uri)
    (stale,) = parents_of(runs_by_id(client))
    assert stale.info.status == "RUNNING"  # what a killed sweep leaves: nothing could mark it
    finished = {r.num for r in sweep.job_records(tmp_path / "first") if r.status == "finished"}
    early = children_of(runs_by_id(client), stale)  # logged as the jobs ended, before the kill
    assert set(early) <= finished and all(r.info.status in ("FINISHED", "RUNNING") for r in early.values())

    second = subprocess.run([*command, f"hydra.sweep.dir={tmp_path / 'second'}"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "run(s) left RUNNING by stopped processes marked KILLED" in second.stdout
    runs = runs_by_id(client)
    assert not [r for r in runs.values() if r.info.status == "RUNNING"]
    first_parent, _ = parents_of(runs)
    assert first_parent.info.run_id == stale.info.run_id and first_parent.info.status == "KILLED"
    logged = children_of(runs, first_parent)
    assert sorted(logged) == list(range(12))
    assert {n for n, r in logged.items() if r.info.status == "FINISHED"} == finished
    assert {r.num for r in sweep.job_records(tmp_path / "second") if r.status == "skipped"} == finished
    assert_resumed_sweep_complete(client, runs, tmp_path / "second", uri)
