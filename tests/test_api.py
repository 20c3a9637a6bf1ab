"""eqexp from Python (`eqexp.run`, `eqexp.sweep`, `eqexp.load`): the same files as the command,
byte for byte, the same errors, the results read back from a directory and from MLflow, and the
example notebook run headless.

The API's runs happen in a fresh Python process started with PYTHONHASHSEED=123 (as a kernel
starts with its own seed), the command's with the seed run.py gives itself (0): equal files
show that the API's results do not depend on the kernel's hash seed."""

import json
import os
import subprocess
import sys
from html import escape
from pathlib import Path

import pandas as pd
import pytest

import eqexp
from eqexp.inference import hypothesis
from eqexp.spec import SpecError

ROOT = Path(__file__).resolve().parents[1]
RESULT_FILES = ("coefficients.csv", "tests.csv")
SWEEP_AXIS = "experiment=table8_ownership,table6_mediation_humancapital"  # a hetero job and a mediation job


def common(base: Path, cache: Path, side: str) -> list[str]:
    """data=synthetic_small, the shared data cache, and this side's own MLflow store (so that
    neither side's sweep resumes from the other's runs)."""
    return ["data=synthetic_small", f"data.cache_dir={cache}", f"tracking.uri=sqlite:///{base / side / 'mlflow.db'}",
            f"tracking.artifact_root={base / side / 'mlartifacts'}"]


def cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def api(call: str, overrides: list[str], cwd: Path) -> dict:
    """`eqexp.<call>(*overrides)` in a new process (seed 123), from `cwd`: what it returned, and the process's state after."""
    script = (f"import json, os, sys, eqexp\nresult = eqexp.{call}(*{overrides!r})\n"
              "print('RESULT=' + json.dumps({'directory': str(result.directory), 'mlflow_run_id': result.mlflow_run_id,"
              " 'cwd': os.getcwd(), 'seed': os.environ.get('PYTHONHASHSEED'), 'argv': sys.argv,"
              " 'full_error': os.environ.get('HYDRA_FULL_ERROR')}))\n")
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return {**json.loads(done.stdout.rsplit("RESULT=", 1)[1]), "stdout": done.stdout}


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api")


@pytest.fixture(scope="module")
def runs(base, small_cache) -> dict:
    """The Table 4 baseline by the command and by the API (called from examples/, a notebook's folder)."""
    done = cli([*common(base, small_cache, "cli"), "experiment=table4_baseline", f"hydra.run.dir={base / 'cli_run'}"])
    assert done.returncode == 0, done.stderr[-3000:]
    made = api("run", [*common(base, small_cache, "api"), "experiment=table4_baseline", f"hydra.run.dir={base / 'api_run'}"],
               ROOT / "examples")
    return {"cli": base / "cli_run", "api": made}


@pytest.fixture(scope="module")
def sweeps(base, small_cache) -> dict:
    """A sweep of a hetero job and a mediation job, by the command and by the API."""
    done = cli(["-m", *common(base, small_cache, "cli"), SWEEP_AXIS, f"hydra.sweep.dir={base / 'cli_sweep'}"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    made = api("sweep", [*common(base, small_cache, "api"), SWEEP_AXIS, f"hydra.sweep.dir={base / 'api_sweep'}"], ROOT)
    return {"cli": base / "cli_sweep", "api": made}


@pytest.mark.slow
def test_a_run_writes_the_commands_files_byte_for_byte(runs):
    made = runs["api"]
    assert Path(made["directory"]) == runs["cli"].with_name("api_run")
    for name in RESULT_FILES:
        assert (Path(made["directory"]) / name).read_bytes() == (runs["cli"] / name).read_bytes(), name
    assert (Path(made["directory"]) / "tables" / "table.md").read_text() == (runs["cli"] / "tables" / "table.md").read_text()
    # the caller's process is as it was: its folder, its command line, its seed, no HYDRA_FULL_ERROR
    assert made["cwd"] == str(ROOT / "examples") and made["argv"] == ["-c"]
    assert made["seed"] == "123" and made["full_error"] is None


@pytest.mark.slow
def test_a_sweep_writes_the_commands_files_byte_for_byte(sweeps):
    cli_jobs = sorted(p.name for p in sweeps["cli"].iterdir() if (p / ".hydra").is_dir())
    api_jobs = sorted(p.name for p in Path(sweeps["api"]["directory"]).iterdir() if (p / ".hydra").is_dir())
    assert cli_jobs == api_jobs and len(cli_jobs) == 2
    for job in cli_jobs:
        for name in RESULT_FILES:
            assert (Path(sweeps["api"]["directory"]) / job / name).read_bytes() == (sweeps["cli"] / job / name).read_bytes(), (job, name)
    mediation = hypothesis.read(sweeps["cli"] / next(j for j in cli_jobs if "table6" in j) / "tests.csv")
    assert {"sobel", "bootstrap_percentile"} <= set(mediation.test)  # the mediation job's own tests were compared


@pytest.mark.slow
def test_a_run_reads_back_from_its_directory_and_from_mlflow(runs, base):
    run = eqexp.load(runs["api"]["directory"])
    assert isinstance(run, eqexp.Run) and run.status == "finished"
    pd.testing.assert_frame_equal(run.coefficients, pd.read_csv(runs["cli"] / "coefficients.csv"))
    assert dict(run.tests.dtypes.astype(str)) == {c: str(pd.Series(dtype=d).dtype) for c, d in hypothesis.DTYPES.items()}
    pd.testing.assert_frame_equal(run.tests, hypothesis.read(runs["cli"] / "tests.csv"))
    assert run.rows.equals(pd.read_csv(runs["cli"] / "rows.csv"))
    assert run.table("txt") == (runs["cli"] / "tables" / "table.txt").read_text()
    assert [p.name for p in run.figures] == ["inverted_u_m1.png", "inverted_u_m2.png"]
    assert run.config["data"]["name"] == "synthetic_small" and run.spec.model.treatment == "market"
    html = run._repr_html_()
    assert (runs["cli"] / "tables" / "table.html").read_text() in html and escape(run.tests.verdict.iloc[0]) in html
    docx = run.table("docx")  # the Word file's path (a binary format)
    assert docx == run.directory / "tables" / "table.docx" and docx.read_bytes()[:2] == b"PK"

    assert run.mlflow_run_id and f"[eqexp] MLflow run {run.mlflow_run_id} (" in runs["api"]["stdout"]  # as printed
    assert run.mlflow_run_id == runs["api"]["mlflow_run_id"]
    logged = eqexp.load(run.mlflow_run_id, tracking_uri=f"sqlite:///{base / 'api' / 'mlflow.db'}", into=base / "downloaded")
    assert logged.directory.is_relative_to(base / "downloaded") and logged.mlflow_run_id == run.mlflow_run_id
    pd.testing.assert_frame_equal(logged.coefficients, run.coefficients)
    pd.testing.assert_frame_equal(logged.tests, run.tests)
    assert logged.table("md") == run.table("md")


@pytest.mark.slow
def test_a_sweep_reads_back_from_its_directory_and_from_its_parent_run(sweeps, base):
    sweep = eqexp.load(sweeps["api"]["directory"])
    assert isinstance(sweep, eqexp.Sweep) and sweep.mlflow_run_id == sweeps["api"]["mlflow_run_id"]
    assert f"[eqexp] MLflow parent run {sweep.mlflow_run_id}:" in sweeps["api"]["stdout"]
    assert [job.label for job in sweep.jobs] == ["experiment=table8_ownership", "experiment=table6_mediation_humancapital"]
    assert list(sweep.summary.status) == ["finished", "finished"]
    for job in sweep.jobs:
        pd.testing.assert_frame_equal(job.coefficients, pd.read_csv(sweeps["cli"] / job.directory.name / "coefficients.csv"))
    pd.testing.assert_frame_equal(sweep.combined, pd.read_csv(sweeps["cli"] / "combined_coefficients.csv"))
    assert sweep.table("md") == (sweeps["cli"] / "combined.md").read_text().replace("Sweep cli_sweep", "Sweep api_sweep")
    assert len(sweep.coefficients) == sum(len(job.coefficients) for job in sweep.jobs)
    assert [p.name for p in sweep.figures] == ["coefplot.png"]

    logged = eqexp.load(sweep.mlflow_run_id, tracking_uri=f"sqlite:///{base / 'api' / 'mlflow.db'}", into=base / "downloaded_sweep")
    assert isinstance(logged, eqexp.Sweep) and [j.label for j in logged.jobs] == [j.label for j in sweep.jobs]
    for job, there in zip(sweep.jobs, logged.jobs):
        assert there.mlflow_run_id == job.mlflow_run_id
        pd.testing.assert_frame_equal(there.coefficients, job.coefficients)
        pd.testing.assert_frame_equal(there.tests, job.tests)
    pd.testing.assert_frame_equal(logged.summary, sweep.summary)


def command_message(done: subprocess.CompletedProcess, error: str = "SpecError") -> str:
    """What the command printed for its bad input (one line: the message of an `{error}`)."""
    return next(line for line in done.stderr.splitlines() if line.startswith(f"[eqexp] {error}: ")).removeprefix(f"[eqexp] {error}: ")


def test_bad_input_raises_what_the_command_prints(base, small_cache):
    bad = ["data=synthetic_small", f"data.cache_dir={small_cache}", "tracking=off", "model.treatment=markt"]
    here = os.getcwd()
    done = cli([*bad, f"hydra.run.dir={base / 'bad_cli'}"])
    assert done.returncode == 2
    with pytest.raises(SpecError) as raised:
        eqexp.run(*bad, f"hydra.run.dir={base / 'bad_api'}")
    assert str(raised.value) == command_message(done) and "Did you mean 'market', 'market_iv'?" in str(raised.value)
    assert os.getcwd() == here and "HYDRA_FULL_ERROR" not in os.environ


def test_an_unknown_option_raises_hydras_error(base):
    from hydra.errors import MissingConfigException

    done = cli(["tracking=off", "hetero=ownershp", f"hydra.run.dir={base / 'unknown_cli'}"])
    assert done.returncode == 1 and "Could not find 'hetero/ownershp'" in done.stderr
    with pytest.raises(MissingConfigException, match="Could not find 'hetero/ownershp'") as raised:
        eqexp.run("tracking=off", "hetero=ownershp", f"hydra.run.dir={base / 'unknown_api'}")
    assert str(raised.value).splitlines()[0] in done.stderr


def test_load_names_what_is_not_a_run(tmp_path):
    from eqexp.rundir import OutputDirError

    with pytest.raises(OutputDirError, match="neither sweep.json .* nor .hydra/hydra.yaml"):
        eqexp.load(tmp_path)


def notebook_runs(outputs: Path) -> dict[str, Path]:
    """The notebook's run directories, by what tells them apart: its ownership split or not."""
    found = {}
    for result in outputs.glob("runs/**/coefficients.csv"):
        overrides = (result.parent / ".hydra" / "overrides.yaml").read_text()
        found["ownership" if "hetero=ownership" in overrides else "table4"] = result.parent
    return found


@pytest.mark.slow
def test_the_example_notebook_runs_headless_and_its_outputs_hold_the_table(tmp_path, small_cache, monkeypatch):
    import nbclient
    import nbformat

    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    monkeypatch.setenv("EQEXP_NOTEBOOK_OVERRIDES", f"outputs={tmp_path / 'outputs'} data.cache_dir={small_cache}")
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "examples")}}).execute()
    outputs = [[o for o in cell.get("outputs", []) if o.output_type in ("execute_result", "display_data")] for cell in notebook.cells]
    shown = {source: out for cell, out in zip(notebook.cells, outputs) if out for source in [cell.source]}
    runs = notebook_runs(tmp_path / "outputs")
    assert set(runs) == {"table4", "ownership"}

    def shown_by(line: str) -> list:
        return next(out for source, out in shown.items() if line in source)

    for name, line in (("table4", "table4  #"), ("ownership", "\nownership")):
        table = (runs[name] / "tables" / "table.html").read_text()
        assert table in shown_by(line)[0]["data"]["text/html"], name
    first = pd.read_csv(runs["table4"] / "coefficients.csv").iloc[0]
    assert f"{first.estimate:.6f}" in shown_by("table4.coefficients")[0]["data"]["text/plain"]
    figure = shown_by("plt.show()")
    assert figure and figure[0]["data"]["image/png"]  # the coefficients drawn from the DataFrame
    assert len(pd.read_csv(runs["ownership"] / "coefficients.csv").query("term == 'market'")) == 2  # two groups drawn


@pytest.mark.slow
def test_a_sweep_with_a_failed_job_is_returned_with_its_reason_and_found_without_naming_its_folder(tmp_path, small_cache):
    split = eqexp.sweep("data=synthetic_small", f"data.cache_dir={small_cache}", "tracking=off", f"outputs={tmp_path}",
                        'sample.query="year != 2004","year > 2030"')  # the second leaves no row: it fails
    assert split.directory.parent == tmp_path / "sweeps" and (split.directory / "sweep.json").exists()
    assert list(split.summary.status) == ["finished", "failed"] and split.mlflow_run_id is None
    assert "SpecError: " in split.summary.reason.iloc[1] and "no observations left" in split.summary.reason.iloc[1]
    finished, failed = split.jobs
    assert (finished.status, failed.status) == ("finished", "failed") and failed.coefficients.empty and failed.tests.empty
    pd.testing.assert_frame_equal(split.coefficients.drop(columns=["job", "overrides"]), finished.coefficients)
    with pytest.raises(FileNotFoundError, match=r"no md table \(\*\.md\) in .*formats there: none"):
        failed.table("md")
    assert escape(split.summary.reason.iloc[1]) in split._repr_html_()


def test_a_hand_made_run_reads_every_file_and_hands_a_word_table_as_its_path(tmp_path):
    from conftest import hand_made_run

    run = eqexp.load(hand_made_run(tmp_path / "run", tmp_path))
    assert run.table("md") == (run.directory / "tables" / "table.md").read_text()
    assert "Market" in run.table("tex") and run.figures == [run.directory / "figures" / "inverted_u_m1.png"]
    (run.directory / "tables" / "table.docx").write_bytes(b"PK\x03\x04")  # as another writer leaves one
    assert run.table("docx") == run.directory / "tables" / "table.docx"
    with pytest.raises(ValueError, match="'pdf' is not one of md, tex, html, txt, docx"):
        run.table("pdf")
    assert list(run.tests.test) == ["utest"] and run.tests.reject.dtype == "boolean" and run.mlflow_run_id is None
    assert run.label == "data=tiny,data.cache_dir={0}/cache,tracking.uri=sqlite:///{0}/m.db,model.controls=[scale],data.path={0}/panel.csv".format(tmp_path)


def test_a_refused_sweep_is_a_command_error_and_runs_nothing(tmp_path, capsys):
    from eqexp.api import CommandError

    with pytest.raises(CommandError, match="exited with 2 and wrote no sweep"):
        eqexp.sweep("tracking=off", "hetero=ownership,ownershp", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert "[eqexp] MissingConfigException: In 'config': Could not find 'hetero/ownershp'" in capsys.readouterr().err
    assert not (tmp_path / "sweep" / "sweep.json").exists()


def test_a_users_config_dir_is_the_commands_config_dir_and_the_run_records_the_same_command(tmp_path):
    """(After the failed sweep above in this process: a run after it is not taken for failed.)"""
    from eqexp.rundir import command, open_dir

    conf = ROOT / "examples" / "grunfeld" / "conf"
    overrides = ["data=grunfeld", "model=grunfeld", "report=grunfeld", "tracking=off", f"data.cache_dir={tmp_path / 'cache'}"]
    done = cli(["--config-dir", str(conf), *overrides, f"hydra.run.dir={tmp_path / 'cli'}"])
    assert done.returncode == 0, done.stderr[-3000:]
    run = eqexp.run(*overrides, f"hydra.run.dir={tmp_path / 'api'}", config_dir=conf)
    for name in RESULT_FILES:
        assert (run.directory / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    recorded = [command(open_dir(d)) for d in (tmp_path / "cli", run.directory)]
    assert recorded[0][:4] == ["python", "run.py", "--config-dir", str(conf)]
    assert recorded[1] == [a.replace(str(tmp_path / "cli"), str(tmp_path / "api")) for a in recorded[0]]


def test_a_bad_panel_raises_the_data_validation_error_the_command_prints(tmp_path):
    from eqexp.data.validate import DataValidationError

    panel = tmp_path / "panel.csv"
    panel.write_text("firm,year,invest,value,capital\n")  # its columns, no rows
    bad = ["data=grunfeld", "model=grunfeld", "report=grunfeld", "tracking=off", f"data.cache_dir={tmp_path / 'cache'}", f"data.path={panel}"]
    conf = ROOT / "examples" / "grunfeld" / "conf"
    done = cli(["--config-dir", str(conf), *bad, f"hydra.run.dir={tmp_path / 'cli'}"])
    assert done.returncode == 2
    with pytest.raises(DataValidationError) as raised:
        eqexp.run(*bad, f"hydra.run.dir={tmp_path / 'api'}", config_dir=conf)
    assert str(raised.value) == command_message(done, "DataValidationError") and "but no rows" in str(raised.value)
