"""Bad values in a user's panel never reach a table: a named error with exit code 2 before any
estimation, or a counted drop (infinite values, as fixest), and never a NaN without a reason.
And a user's panel speaks its own words: no study wording ("Firm", "All firm-years") in its table.
Run as a user runs eqexp: `run.py --config-dir` on Grunfeld's panel with a few values spoiled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

ROOT = Path(__file__).resolve().parents[1]
GRUNFELD = ROOT / "examples" / "grunfeld"
USER = ["--config-dir", str(GRUNFELD / "conf"), "data=grunfeld", "model=grunfeld", "report=grunfeld", "tracking=off"]


def grunfeld() -> pd.DataFrame:
    return pd.read_csv(GRUNFELD / "grunfeld.csv")


def spoiled(tmp_path: Path, name: str, spoil) -> Path:
    df = grunfeld()
    spoil(df)
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def run(tmp_path: Path, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    where = f"hydra.sweep.dir={tmp_path / 'sweep'}" if multirun else f"hydra.run.dir={tmp_path / 'run'}"
    args = [sys.executable, "run.py", *(["-m"] if multirun else []), *USER, f"data.cache_dir={tmp_path / 'cache'}", where, *overrides]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def set_text(df: pd.DataFrame) -> None:
    df["invest"] = df.invest.astype(object)
    df.loc[3, "invest"] = "yes"


def test_text_in_a_numeric_column_is_a_named_error_with_exit_2_before_any_estimation(tmp_path):
    path = spoiled(tmp_path, "text.csv", set_text)
    done = run(tmp_path, f"data.path={path}")
    assert done.returncode == 2, done.stderr[-2000:]
    message = done.stderr
    assert "DataValidationError" in message and str(path) in message and "column 'invest'" in message
    assert "1 row(s)" in message and "yes" in message and "Fix:" in message and "model.outcome" in message
    assert "Traceback" not in message and "estimating" not in done.stdout
    assert not (tmp_path / "run" / "coefficients.csv").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty (0 bytes)"),
    (b"firm,year,invest,value,capital\n", "has its columns (firm, year, invest, value, capital) but no rows"),
    (bytes(range(128, 256)) * 20, "cannot be read as a CSV file (UnicodeDecodeError"),
])
def test_an_empty_or_unreadable_file_is_a_named_error_with_exit_2(tmp_path, content, message):
    path = tmp_path / "panel.csv"
    path.write_bytes(content)
    done = run(tmp_path, f"data.path={path}")
    assert done.returncode == 2 and message in done.stderr and str(path) in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def test_infinite_outcomes_are_removed_counted_and_the_rest_estimated_as_fixest_would(tmp_path):
    def infinite(df):
        df.loc[[2, 7], "invest"] = [np.inf, -np.inf]
    path = spoiled(tmp_path, "inf.csv", infinite)
    done = run(tmp_path, f"data.path={path}", "~data.rules")  # Grunfeld's rule invest >= 0 would name the -inf itself
    assert done.returncode == 0, done.stderr[-2000:]
    assert "infinite values in invest: 2 of 220 rows dropped" in done.stdout
    rows = pd.read_csv(tmp_path / "run" / "rows.csv").set_index("step")
    assert rows.loc["infinite values in invest", "dropped"] == 2
    coefficients = pd.read_csv(tmp_path / "run" / "coefficients.csv")
    assert coefficients[["estimate", "std_error", "statistic", "p_value"]].notna().all().all()
    clean = grunfeld().drop(index=[2, 7])
    reference = pf.feols("invest ~ value + capital | firm + year", clean, vcov={"CRV1": "firm"})
    ours = coefficients.set_index("term")
    np.testing.assert_allclose(ours.loc[["value", "capital"], "estimate"], reference.coef()[["value", "capital"]], rtol=1e-8)
    np.testing.assert_allclose(ours.loc[["value", "capital"], "std_error"], reference.se()[["value", "capital"]], rtol=1e-8)
    assert set(ours.n_obs) == {218}
    tests = pd.read_csv(tmp_path / "run" / "tests.csv")
    unexplained = tests[tests[["estimate", "statistic", "p_value"]].isna().any(axis=1) & tests.verdict.isna()]
    assert unexplained.empty


def test_a_sweep_records_each_bad_panel_as_failed_with_its_reason_and_finishes_the_others(tmp_path):
    """-inf in a control (no rule catches it), a square that overflows (1e160² = inf), numbers written
    with a thousands separator, a file with no rows, and the good panel: each job says what it met."""
    def minus_inf(df):
        df.loc[5, "capital"] = -np.inf

    def huge(df):
        df.loc[11, "value"] = 1e160

    def separator(df):
        df["capital"] = df.capital.astype(object)
        df.loc[[0, 1], "capital"] = ["1,234.5", "2,001.0"]
    paths = [spoiled(tmp_path, "minus_inf.csv", minus_inf), spoiled(tmp_path, "huge.csv", huge),
             spoiled(tmp_path, "separator.csv", separator), tmp_path / "header.csv", GRUNFELD / "grunfeld.csv"]
    paths[3].write_text("firm,year,invest,value,capital\n")
    done = run(tmp_path, "~data.rules", "model.square=true", "data.path=" + ",".join(map(str, paths)), multirun=True)
    assert done.returncode == 1 and "5 jobs: 3 finished, 2 failed" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv").drop_duplicates("job").set_index("job")
    assert list(summary.status) == ["finished", "finished", "failed", "failed", "finished"]
    assert "column 'capital' should be numeric but 2 row(s)" in summary.reason[2] and "1,234.5" in summary.reason[2]
    assert "has its columns" in summary.reason[3]
    for job, step in ((0, "infinite values in capital"), (1, "infinite values in value_sq")):
        directory = tmp_path / "sweep" / summary.dir[job] if not Path(summary.dir[job]).is_absolute() else Path(summary.dir[job])
        rows = pd.read_csv(directory / "rows.csv").set_index("step")
        assert rows.loc[step, "dropped"] == 1
        coefficients = pd.read_csv(directory / "coefficients.csv")
        assert coefficients[["estimate", "std_error", "statistic", "p_value"]].notna().all().all()
        assert set(coefficients.n_obs) == {219}


def test_a_users_own_clusters_and_sample_are_named_in_their_words_not_the_studys(tmp_path):
    """A gravity panel: string-valued fixed effects, its own vcov file with `cluster: [pair]` and no label."""
    rng = np.random.default_rng(3)
    countries = [f"C{i:02d}" for i in range(12)]
    rows = [(e, i, y) for e in countries for i in countries if e != i for y in range(2000, 2006)]
    df = pd.DataFrame(rows, columns=["exporter", "importer", "year"])
    df["pair"] = df.exporter + "-" + df.importer
    df["ldist"] = rng.normal(8, 1, len(df))
    df["rta"] = (rng.random(len(df)) < 0.3).astype(float)
    df["ltrade"] = 0.5 * df.rta - 0.9 * df.ldist + rng.normal(size=len(df))
    df.to_csv(tmp_path / "gravity.csv", index=False)
    conf = tmp_path / "conf"
    for group, text in {
        "data/gravity.yaml": f"name: gravity\nsource: panel\npath: {tmp_path / 'gravity.csv'}\nid: pair\ntime: year\ncache_dir: {tmp_path / 'cache'}\n",
        "model/gravity.yaml": "name: gravity\noutcome: ltrade\ntreatment: rta\nsquare: false\ncontrols: [ldist]\n"
                              "fixed_effects: [exporter, importer, year]\ncolumns:\n  - {label: ''}\n",
        "vcov/pair.yaml": "name: pair\ntype: CRV1\ncluster: [pair]\n",
    }.items():
        (conf / group).parent.mkdir(parents=True, exist_ok=True)
        (conf / group).write_text(text)
    args = [sys.executable, "run.py", "--config-dir", str(conf), "data=gravity", "model=gravity", "vcov=pair", "tracking=off",
            "report.descriptives=[]", f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "run" / "tables" / "table.md").read_text()
    se_row = next(line for line in table.splitlines() if "S.E." in line)
    assert "pair" in se_row and "Firm" not in table and "firm-year" not in table
    coefficients = pd.read_csv(tmp_path / "run" / "coefficients.csv")
    assert set(coefficients.vcov) == {"pair"} and set(coefficients["sample"]) == {"All observations"}
    reference = pf.feols("ltrade ~ rta + ldist | exporter + importer + year", df, vcov={"CRV1": "pair"})
    np.testing.assert_allclose(coefficients.set_index("term").loc[["rta", "ldist"], "estimate"], reference.coef()[["rta", "ldist"]], rtol=1e-8)
