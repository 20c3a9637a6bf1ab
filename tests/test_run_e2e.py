"""`python run.py` end to end on the small synthetic world: files, table and one MLflow run."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
from conftest import default_sigint
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ["model", "sample", "outcome", "term", "estimate", "std_error", "statistic", "p_value",
            "conf_low", "conf_high", "n_obs", "r2", "r2_within", "vcov"]


def run(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "run.py", "data=synthetic_small", f"hydra.run.dir={tmp_path}/run",
            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts", *overrides]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_baseline_writes_contract_table_and_mlflow_run(tmp_path):
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "run"
    coefs = pd.read_csv(out / "coefficients.csv")
    assert list(coefs.columns) == CONTRACT
    assert set(coefs.model) == {"(1)", "(2)"}
    assert {"market", "market_sq"} <= set(coefs.term[coefs.model == "(1)"])
    assert {"scale", "age", "roa", "rdebt", "fic"} <= set(coefs.term[coefs.model == "(2)"])
    for ext in ("md", "tex", "html", "txt"):
        assert (out / "tables" / f"table.{ext}").stat().st_size > 0
    printed = (out / "tables" / "table.txt").read_text()
    assert printed.splitlines()[0] in proc.stdout and "Observations" in proc.stdout

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "eqexp"]
    runs = client.search_runs([experiment.experiment_id])
    (mlrun,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert mlrun.info.status == "FINISHED"
    # each model is a run nested under the job's, its metrics named alike in every run (not m2.market_sq.estimate)
    models = {r.data.params["fit.column"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == mlrun.info.run_id}
    assert sorted(models) == ["(1)", "(2)"] and all(r.info.status == "FINISHED" for r in models.values())
    row = coefs[(coefs.model == "(2)") & (coefs.term == "market_sq")].iloc[0]
    assert models["(2)"].data.metrics["estimate_sq"] == row.estimate
    assert models["(2)"].data.metrics["n_obs"] == row.n_obs
    assert models["(2)"].data.metrics["coef.scale"] == coefs[(coefs.model == "(2)") & (coefs.term == "scale")].estimate.iloc[0]
    assert models["(1)"].data.params["choice.trim"] == "none" and "coef.scale" not in models["(1)"].data.metrics
    assert not any(k.startswith("m2.") for k in mlrun.data.metrics)
    assert mlrun.data.params["model.treatment"] == "market"
    assert len(mlrun.data.tags["data_fingerprint"]) > 10 and "git_commit" in mlrun.data.tags
    artifacts = {a.path for a in client.list_artifacts(mlrun.info.run_id)}
    assert {"coefficients.csv", "tables", "build_log.json", "rows.csv", "report.html"} <= artifacts
    assert "report.html" in proc.stdout and f"{row.estimate:.4f}" in (out / "report.html").read_text()
    assert mlrun.data.params["build.sigma"] == "table"  # the measures' variants are logged with the run


def test_bad_variable_fails_before_estimation(tmp_path):
    proc = run(tmp_path, "model.controls=[scale,roaa]")
    assert proc.returncode == 2
    assert "[eqexp] SpecError: 'model.controls' names the variable 'roaa'" in proc.stderr
    assert "Traceback" not in proc.stderr  # bad input gets its message, not a stack trace
    assert "estimating" not in proc.stdout


def test_the_helper_processes_of_a_killed_run_end_with_it_and_ctrl_c_exits_130(tmp_path):
    """A single run loads MLflow and matplotlib in forked processes (eqexp.helper): killing the
    run leaves no process behind, and Ctrl-C is the run's to report, with Unix's exit code."""
    import os
    import signal
    import time

    import psutil

    args = [sys.executable, "run.py", "data=synthetic_small", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
            f"tracking.artifact_root={tmp_path}/artifacts"]
    for sent, expected in ((signal.SIGKILL, -signal.SIGKILL), (signal.SIGINT, 130)):
        proc = subprocess.Popen([*args, f"hydra.run.dir={tmp_path}/{sent.name}"], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=default_sigint)
        deadline = time.monotonic() + 60
        while len(psutil.Process(proc.pid).children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        helpers = psutil.Process(proc.pid).children()
        assert len(helpers) == 2  # the MLflow process and the figures' process
        # Ctrl-C reaches the whole group, as from a terminal; SIGKILL (the OOM killer) only the run
        (os.killpg if sent == signal.SIGINT else os.kill)(proc.pid, sent)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == expected, err[-2000:]
        gone, alive = psutil.wait_procs(helpers, timeout=30)
        assert not alive and "Traceback" not in err
    assert "[eqexp] interrupted" in err


def test_a_store_that_cannot_be_used_is_named_with_what_to_do_and_the_results_are_kept(tmp_path):
    """A tracking URI whose database driver is not installed: the job's files are written, and the
    run ends with MLflow's reason and the driver to install (no traceback), exit code 1."""
    proc = run(tmp_path, "tracking.uri=mysql://user:secret@localhost/eqexp")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "[eqexp] TrackingError: Cannot log to the MLflow store mysql://user:***@localhost/eqexp" in proc.stderr
    assert "Install its database driver: pip install pymysql" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "coefficients.csv").exists() and "[eqexp] report:" in proc.stdout


def test_only_a_command_line_that_turns_tracking_off_skips_the_mlflow_process():
    """`tracking=off` (or `tracking.enabled=false`) on the command line: no MLflow process is
    started; a sweep over tracking choices, or no choice, still starts one."""
    from eqexp.tracking import off_on_command_line

    assert off_on_command_line(["tracking=off"]) and off_on_command_line(["-m", "+tracking=off", "hetero=region"])
    assert off_on_command_line(["tracking.enabled=false"])
    assert not off_on_command_line(["-m", "tracking=off,default"]) and not off_on_command_line([])
    assert not off_on_command_line(["tracking.uri=sqlite:///off.db"])
