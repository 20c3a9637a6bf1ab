"""Any unit-by-period panel through YAML alone: Grunfeld's investment data (statsmodels) under
its own column names, run the way a user would (`--config-dir` with their own YAML), against
linearmodels and an explicit-dummy computation; and the identifiers, defaults and errors that
make eqexp fit other panels than the reference study's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from linearmodels.panel import PanelOLS
from test_estimate import dummy_ols_crv1

from eqexp.inference import hypothesis
from eqexp.runner import run_job
from eqexp.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "grunfeld"
USER = ["--config-dir", str(EXAMPLE / "conf"), "data=grunfeld", "model=grunfeld", "report=grunfeld", "tracking=off"]


@pytest.fixture(scope="module")
def grunfeld() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE / "grunfeld.csv")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def run_user(tmp_path: Path, cache: Path, *overrides: str, sweep: bool = False) -> subprocess.CompletedProcess:
    out = [f"hydra.sweep.dir={tmp_path}"] if sweep else [f"hydra.run.dir={tmp_path}"]
    args = [sys.executable, "run.py", *(["-m"] if sweep else []), *USER, f"data.cache_dir={cache}", *out, *overrides]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def panel_ols(df: pd.DataFrame, y: str, x: list[str]):
    indexed = df.set_index(["firm", "year"])
    return PanelOLS(indexed[y], indexed[x], entity_effects=True, time_effects=True).fit(
        cov_type="clustered", cluster_entity=True, debiased=False)


def assert_matches(ours: pd.DataFrame, df: pd.DataFrame, y: str, x: list[str]) -> None:
    reference = panel_ols(df, y, x)
    np.testing.assert_allclose(ours.estimate, reference.params[x], rtol=1e-8)
    _, vcov = dummy_ols_crv1(df.rename(columns={"firm": "firm_id"}), y, x)  # explicit dummies, a hand CRV1 sandwich
    np.testing.assert_allclose(ours.std_error, np.sqrt(np.diag(vcov)), rtol=1e-8)
    ratio = ours.std_error.to_numpy() / reference.std_errors[x].to_numpy()  # the same sandwich, another scalar factor
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-8)
    assert (ours.n_obs == len(df)).all()


def test_baseline_under_its_own_names(tmp_path, cache, grunfeld):
    done = run_user(tmp_path, cache)
    assert done.returncode == 0, done.stderr[-3000:]
    ours = pd.read_csv(tmp_path / "coefficients.csv")
    assert list(ours.term) == ["value", "capital"]
    assert_matches(ours, grunfeld, "invest", ["value", "capital"])
    table = (tmp_path / "tables" / "table.txt").read_text()
    assert "Firm FE" in table and "Year FE" in table and "S.E. clustered by        Firm" in table


def test_heterogeneity_split_written_as_yaml(tmp_path, cache, grunfeld):
    done = run_user(tmp_path, cache, "hetero=size")
    assert done.returncode == 0, done.stderr[-3000:]
    ours = pd.read_csv(tmp_path / "coefficients.csv")
    largest = grunfeld.firm.isin(["General Motors", "US Steel", "General Electric"])
    for model, rows in (("(1)", grunfeld[largest]), ("(2)", grunfeld[~largest])):
        assert_matches(ours[ours.model == model], rows, "invest", ["value", "capital"])
    tests = hypothesis.read(tmp_path / "tests.csv")
    assert {"wald", "suest", "bdiff"} <= set(tests.test[tests.reject.notna()])  # the unit is the firm: permutations apply


def test_lagged_treatment_is_gap_aware_in_the_declared_unit_and_period(tmp_path, cache, grunfeld):
    done = run_user(tmp_path, cache, "lags=l1")
    assert done.returncode == 0, done.stderr[-3000:]
    ours = pd.read_csv(tmp_path / "coefficients.csv")
    lagged = grunfeld.assign(year=grunfeld.year + 1).rename(columns={"value": "L1_value"})[["firm", "year", "L1_value"]]
    with_lag = grunfeld.merge(lagged, on=["firm", "year"]).sort_values(["firm", "year"], ignore_index=True)
    assert list(ours.term) == ["L1_value", "capital"]
    assert_matches(ours, with_lag, "invest", ["L1_value", "capital"])


def test_a_sweep_with_the_users_config_dir(tmp_path, cache):
    done = run_user(tmp_path, cache, "hetero=none,size", sweep=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert list(summary.status) == ["finished", "finished"]


# --- identifiers, defaults, errors (in-process, the small synthetic world) -------------------------------


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=["tracking=off", *overrides])


def test_reordering_fixed_effects_changes_no_number(tmp_path, cache):
    """The unit is data.id, never the first fixed effect: clusters, group model and permutations agree."""
    runs = {}
    for order in ("[firm_id,year]", "[year,firm_id]"):
        cfg = composed("data=synthetic_small", f"data.cache_dir={cache}", "hetero=ownership", f"model.fixed_effects={order}",
                       "hetero.permutation.draws=200")
        result = run_job(cfg, tmp_path / order)
        runs[order] = (pd.read_csv(tmp_path / order / "coefficients.csv"), hypothesis.read(tmp_path / order / "tests.csv"))
    (coef_a, tests_a), (coef_b, tests_b) = runs.values()
    np.testing.assert_allclose(coef_a.estimate, coef_b.estimate, rtol=1e-10)
    np.testing.assert_allclose(coef_a.std_error, coef_b.std_error, rtol=1e-10)
    merged = tests_a.merge(tests_b, on=["model", "test", "hypothesis"])
    assert len(merged) == len(tests_a) == len(tests_b) and "bdiff" in set(tests_a.test)
    numbers = [c for c, kind in hypothesis.DTYPES.items() if kind == "float64"]
    np.testing.assert_allclose(merged[[f"{c}_x" for c in numbers]], merged[[f"{c}_y" for c in numbers]], rtol=1e-9)
    assert (merged.reject_x == merged.reject_y).all()
    assert result.spec.vcov.cluster == ["firm_id"]


def test_default_clustering_and_labels_follow_the_declared_unit():
    spec = load_spec(composed("data.id=province"))
    assert spec.vcov.cluster == ["province"] and spec.vcov.label == "Province"
    spec = load_spec(composed("data.id=city"))
    assert spec.vcov.label == "city"  # no label given: the column's own name


def test_descriptives_default_to_the_models_variables():
    from eqexp.spec import descriptive_variables

    spec = load_spec(composed("experiment=table3_correlations"))
    assert descriptive_variables(spec) == ["quality", "market", "scale", "age", "roa", "rdebt", "fic"]  # listed
    spec = load_spec(composed("mediator=rd"))
    assert descriptive_variables(spec) == ["quality", "market", "scale", "age", "roa", "rdebt", "fic", "rd"]  # the model's


@pytest.mark.parametrize(("overrides", "message"), [
    (["model.controls=[scale,scale]"], r"'model.controls' lists 'scale' more than once"),
    (["model.controls=[scale,age,market]"], r"lists the treatment 'market' as a control"),
    (["lags.treatment=-1"], r"'lags.treatment' is -1: a lag is a number of periods back"),
    (["data=example", "data.schema=export_qualty"], r"'data.schema' is 'export_qualty'.*Did you mean 'export_quality'"),
    (["mediator=rd", "model.fixed_effects=[year]"], r"mediation bootstrap resamples whole units"),
])
def test_named_errors_before_any_estimation(overrides, message):
    with pytest.raises(SpecError, match=message):
        load_spec(composed(*overrides))


def test_an_empty_group_is_named_before_any_group_is_estimated(tmp_path, cache, monkeypatch):
    import importlib

    regression = importlib.import_module("eqexp.analyses.regression")  # the module (the package exports a function of that name)
    fitted = []
    monkeypatch.setattr(regression, "fit", lambda *a, **k: fitted.append(a) or pytest.fail("estimated before checking"))
    cfg = composed("data=synthetic_small", f"data.cache_dir={cache}", "hetero=ownership", "hetero.groups.State-Owned='soe == 7'")
    with pytest.raises(SpecError, match=r"Model \(1\) State-Owned \(query 'soe == 7': 0 rows.*no observations left"):
        run_job(cfg, tmp_path)
    assert not fitted


def test_bad_input_ends_with_its_message_and_exit_code_2(tmp_path, cache):
    done = run_user(tmp_path, cache, "model.controls=[capital,value]")
    assert done.returncode == 2 and "lists the treatment 'value' as a control" in done.stderr
    done = run_user(tmp_path / "b", cache, "data.id=company")
    assert done.returncode == 2 and "data.id is 'company', which is not a column" in done.stderr


def test_a_declared_schema_is_applied_and_only_where_declared(tmp_path):
    from eqexp.data.load import load
    from eqexp.data.validate import DataValidationError
    from eqexp.spec import DataSpec

    path = tmp_path / "p.csv"
    pd.read_csv(EXAMPLE / "grunfeld.csv").to_csv(path, index=False)
    mine = DataSpec(name="g", source="panel", path=str(path), id="firm", time="year", cache_dir=str(tmp_path / "cache"))
    assert len(load(mine).panel) == 220  # no study rules: no quality, no province needed
    mine.schema = "export_quality"
    with pytest.raises(DataValidationError, match=r"missing required column\(s\): firm_id, province, quality, market"):
        load(mine)
    mine.schema, mine.rules = None, {"invest": {"max": 1000}}
    with pytest.raises(DataValidationError, match=r"'invest' has \d+ row\(s\) with values above 1000"):
        load(mine)


def test_mlflow_tracking_uri_is_the_default_and_the_command_line_wins(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert load_spec(composed("tracking=default")).tracking.uri == "sqlite:///outputs/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://team@db/eqexp")
    assert load_spec(composed("tracking=default")).tracking.uri == "postgresql://team@db/eqexp"
    assert load_spec(composed("tracking=default", "tracking.uri=sqlite:///x.db")).tracking.uri == "sqlite:///x.db"


@pytest.mark.parametrize("experiment", ["spill1_baseline", "spill4_general_trade", "spill9_destination"])
def test_spillover_presets_switch_their_measures_on_for_any_data(experiment):
    spec = load_spec(composed(f"experiment={experiment}", "data=synthetic_small"))
    assert spec.data.name == "synthetic_small" and spec.data.build["spillover"] and spec.data.build["quality_by_income"]
