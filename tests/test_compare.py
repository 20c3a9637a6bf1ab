"""`python -m eqexp.compare`: the side-by-side table of a past sweep, from its directory or its MLflow parent run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from eqexp import compare, sweep
from eqexp.sweep.finish import finish_sweep

ROOT = Path(__file__).resolve().parents[1]
ESTIMATES = {"none": 0.05, "p1": 0.09, "p5": 0.02, "winsor1": 0.07}


def coefficients(estimate: float) -> pd.DataFrame:
    rows = []
    for i in (1, 2):
        for term, est, se in (("market", estimate + 0.001 * i, 0.01), ("market_sq", -0.006, 0.002), ("scale", 0.02, 0.004)):
            rows.append({"model": f"({i})", "sample": "All firm-years", "outcome": "quality", "term": term, "estimate": est,
                         "std_error": se, "statistic": est / se, "p_value": 0.001 if abs(est / se) > 2.6 else 0.3,
                         "conf_low": est - 1.96 * se, "conf_high": est + 1.96 * se, "n_obs": 500 * i, "r2": 0.9,
                         "r2_within": 0.05, "vcov": "Firm"})
    return pd.DataFrame(rows)


@pytest.fixture
def sweep_dir(tmp_path) -> Path:
    """Four finished jobs and one failed one, as a sweep leaves them."""
    directory = tmp_path / "sweep"
    records = []
    for num, name in enumerate([*ESTIMATES, "p10"]):
        record = sweep.JobRecord(num=num, label=f"trim={name}", overrides=[f"trim={name}"], treatment="market",
                                 fixed_effects=["firm_id", "year"], labels={"market": "Market"}, status="finished",
                                 dir=str(directory / f"{num}_trim={name}"))
        if name == "p10":
            record.status, record.reason = "failed", "SpecError: trim.upper must exceed trim.lower"
        else:
            Path(record.dir).mkdir(parents=True)
            coefficients(ESTIMATES[name]).to_csv(Path(record.dir) / "coefficients.csv", index=False)
        sweep.write_status(directory, record)
        records.append(record)
    (directory / sweep.PLAN_FILE).write_text(json.dumps({"context": {"sweep_dir": str(directory), "root": str(tmp_path)},
                                                         "jobs": [r.__dict__ for r in records]}))
    return directory


def table_columns(md: Path) -> list[str]:
    lines = [line for line in md.read_text().splitlines() if line.startswith("| ")]
    return [c.strip() for c in lines[1].strip("|").split("|")][1:]  # the row of job labels


def market_row(md: Path) -> list[str]:
    row = next(line for line in md.read_text().splitlines() if line.startswith("| Market |"))
    return [c.strip() for c in row.strip("|").split("|")][1:]


def test_select_by_label_pattern_and_number_in_the_order_given(sweep_dir, tmp_path):
    out = tmp_path / "out"
    assert compare.main([str(sweep_dir), "--jobs", "trim=p5", "0", "trim=w*", "--out", str(out)]) == 0
    assert table_columns(out / "combined.md") == [
        "trim=p5 (1)", "trim=p5 (2)", "trim=none (1)", "trim=none (2)", "trim=winsor1 (1)", "trim=winsor1 (2)"]
    assert market_row(out / "combined.md") == ["0.0210", "0.0220", "0.0510***", "0.0520***", "0.0710***", "0.0720***"]
    long = pd.read_csv(out / "combined_coefficients.csv")
    assert list(dict.fromkeys(long.label)) == ["trim=p5", "trim=none", "trim=winsor1"]
    assert (out / "coefplot.png").read_bytes()[:4] == b"\x89PNG"
    for ext in ("md", "tex", "html", "txt"):
        assert (out / f"combined.{ext}").exists()


def test_order_by_the_treatment_coefficient(sweep_dir, tmp_path):
    out = tmp_path / "by_estimate"
    compare.main([str(sweep_dir), "--order", "estimate", "--descending", "--out", str(out)])
    labels = list(dict.fromkeys(c.split(" (")[0] for c in table_columns(out / "combined.md")))
    assert labels == ["trim=p1", "trim=winsor1", "trim=none", "trim=p5"]  # 0.09 > 0.07 > 0.05 > 0.02
    market = market_row(out / "combined.md")
    assert market[:2] == ["0.0910***", "0.0920***"]
    md = (out / "combined.md").read_text()
    assert "Job 4 (trim=p10) failed: SpecError" in md  # a failed job is named in the notes, not dropped silently


def test_unknown_job_is_a_clear_error(sweep_dir):
    with pytest.raises(SystemExit, match="matches no job of this sweep. Jobs: 0: trim=none"):
        compare.main([str(sweep_dir), "--jobs", "hetero=region"])
    with pytest.raises(SystemExit, match="not one of plan, given"):
        compare.main([str(sweep_dir), "--order", "colour"])


def test_a_directory_that_is_not_a_sweep_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="not an eqexp sweep directory"):
        compare.from_directory(tmp_path)


def _log_sweep_to_mlflow(sweep_dir: Path, uri: str, artifacts: Path, with_summary: bool) -> str:
    """The MLflow side of the hand-made sweep: a parent run, one child per job (one of them skipped)."""
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.create_experiment("eqexp", artifact_location=artifacts.as_uri())
    parent = client.create_run(experiment, run_name="sweep: trim=none,p1,p5,winsor1,p10", tags={"eqexp.kind": "sweep"}).info.run_id
    earlier = client.create_run(experiment, run_name="trim=p1").info.run_id  # a previous sweep's run, reused below
    records = sweep.job_records(sweep_dir)
    for r in records:
        tags = {"mlflow.parentRunId": parent, "eqexp.job_num": str(r.num), "eqexp.status": r.status, "eqexp.error": r.reason}
        if r.label == "trim=p1":
            tags.update({"eqexp.status": "skipped", "eqexp.reused_run_id": earlier})
            client.log_artifact(earlier, str(Path(r.dir) / "coefficients.csv"))
        run = client.create_run(experiment, run_name=r.label, tags=tags).info.run_id
        params = {"model.treatment": "market", "model.fixed_effects": json.dumps(["firm_id", "year"]), "report.labels.market": "Market"}
        client.log_batch(run, params=[Param(k, v) for k, v in params.items()])
        if r.status == "finished" and r.label != "trim=p1":
            client.log_artifact(run, str(Path(r.dir) / "coefficients.csv"))
        client.set_terminated(run, status="FAILED" if r.status == "failed" else "FINISHED")
    if with_summary:
        finish_sweep(sweep_dir)
        for name in ("jobs.json", "combined_coefficients.csv"):
            client.log_artifact(parent, str(sweep_dir / name))
    return parent


@pytest.mark.parametrize("with_summary", [True, False], ids=["parent-artifacts", "rebuilt-from-children"])
def test_from_an_mlflow_parent_run_equals_the_directory(sweep_dir, tmp_path, with_summary):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = _log_sweep_to_mlflow(sweep_dir, uri, tmp_path / "mlartifacts", with_summary)
    from_dir, from_run = tmp_path / "from_dir", tmp_path / "from_run"
    compare.main([str(sweep_dir), "--out", str(from_dir)])
    done = subprocess.run([sys.executable, "-m", "eqexp.compare", parent, "--tracking-uri", uri, "--out", str(from_run)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5 job(s) from MLflow run" in done.stdout
    assert table_columns(from_run / "combined.md") == table_columns(from_dir / "combined.md")
    body = lambda p: [line for line in p.read_text().splitlines()[1:] if "skipped" not in line]  # noqa: E731
    assert body(from_run / "combined.md") == body(from_dir / "combined.md")
    a = pd.read_csv(from_dir / "combined_coefficients.csv")
    b = pd.read_csv(from_run / "combined_coefficients.csv")
    pd.testing.assert_frame_equal(a[["job", "label", "model", "term", "estimate", "n_obs"]], b[["job", "label", "model", "term", "estimate", "n_obs"]])
