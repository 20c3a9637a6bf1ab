"""Each preset of the reference study produces its table in the study's layout (small world)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from eqexp.data.load import load
from eqexp.inference import hypothesis
from eqexp.runner import run_job
from eqexp.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def run(cache: Path, tmp: Path, experiment: str, *overrides: str, shared=None):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["data=synthetic_small", "tracking=off", f"data.cache_dir={cache}",
                                           f"experiment={experiment}", *overrides])
    return run_job(cfg, tmp, cache=shared)


def test_table2_descriptives(cache, tmp_path):
    result = run(cache, tmp_path, "table2_descriptives")
    table = result.tables["table"]
    assert table.header[1] == ["Variable", "Sample size", "Minimum", "Maximum", "Median", "Standard deviation", "Mean"]
    panel = load(result.spec.data).panel
    quality = next(r for r in table.body if r[0] == "quality")
    assert quality[1] == f"{len(panel):,}" and quality[5] == f"{panel.quality.std():.3f}"
    assert len(table.body) == 10


def test_table2_and_3_numbers_reach_their_files_and_the_mlflow_record(cache, tmp_path):
    """descriptives.csv holds Table 2's numbers, tests.csv each pair's test of r = 0, and both reach the job's metrics."""
    tracked = ["tracking.enabled=true", f"tracking.uri=sqlite:///{tmp_path / 'm.db'}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfgs = {name: compose("config", overrides=["data=synthetic_small", f"data.cache_dir={cache}", f"experiment={name}", *tracked])
                for name in ("table2_descriptives", "table3_correlations")}
    run_job(cfgs["table2_descriptives"], tmp_path / "t2", log=False)
    run_job(cfgs["table3_correlations"], tmp_path / "t3", log=False)
    panel = load(load_spec(cfgs["table2_descriptives"]).data).panel
    described = pd.read_csv(tmp_path / "t2" / "descriptives.csv").set_index("variable")
    assert described.at["quality", "mean"] == pytest.approx(panel.quality.mean(), rel=1e-12)
    metrics = json.loads((tmp_path / "t2" / "run.json").read_text())["metrics"]
    assert metrics["quality.describe.mean"] == described.at["quality", "mean"] and metrics["market.describe.n"] == described.at["market", "n"]
    tests = hypothesis.read(tmp_path / "t3" / "tests.csv").set_index(["model", "hypothesis"])
    r = panel[["quality", "market"]].dropna().corr().iat[0, 1]
    assert tests.estimate["quality", "market"] == pytest.approx(r, rel=1e-12) and tests.df["quality", "market"] == len(panel) - 2
    metrics = json.loads((tmp_path / "t3" / "run.json").read_text())["metrics"]
    assert metrics["quality.correlation.market.p_value"] == tests.p_value["quality", "market"]


def test_table3_correlations_lower_triangle_with_stars(cache, tmp_path):
    table = run(cache, tmp_path, "table3_correlations").tables["table"]
    assert len(table.body) == 7 and table.body[0][1] == "1.000" and table.body[0][2] == ""
    assert table.body[1][1].rstrip("*") != table.body[1][1]  # quality–market correlation is starred


def test_table5_lags_six_columns(cache, tmp_path):
    result = run(cache, tmp_path, "table5_lags")
    n = [f.n_obs for f in result.fits]
    assert len(n) == 6 and n[0] > n[1] > n[2] and n[3] <= n[0]
    assert result.fits[0].regressors[:2] == ["L1_market", "L1_market_sq"] and "scale" in result.fits[0].regressors
    assert "L3_scale" in result.fits[5].regressors
    assert [r[0] for r in result.tables["table"].body[:4:2]] == ["L.Market", "L.Market²"]


def test_table6_mediation_three_equations(cache, tmp_path):
    result = run(cache, tmp_path, "table6_mediation_humancapital", "mediator.bootstrap.draws=200")
    assert [f.outcome for f in result.fits] == ["quality", "humancapital", "quality"]
    assert "humancapital" in result.fits[2].regressors and "market_sq" not in result.fits[1].regressors
    notes = "\n".join(result.tables["table"].notes)
    assert "Sobel z" in notes and "bias-corrected" in notes and "Wen–Ye decision" in notes and "P10" in notes
    stats = result.tests.set_index(["test", "hypothesis"]).estimate
    a, b = result.fits[1].coef("market"), result.fits[2].coef("humancapital")
    assert stats["sobel", "ab"] == pytest.approx(a * b, rel=1e-12)


def test_a_second_mediation_channel_takes_its_draws_from_the_first_ones_bootstrap(cache, tmp_path, process_cache):
    """Table 6 whose bootstrap also sums R&D (as a sweep over both tables plans it), then Table 7 in
    the same process: Table 7 solves its draws from Table 6's moments, says so, and finds what it
    finds alone."""
    draws = "mediator.bootstrap.draws=100"
    alone = run(cache, tmp_path / "alone", "table7_mediation_rd", draws, shared=process_cache)
    process_cache.reset()
    run(cache, tmp_path / "t6", "table6_mediation_humancapital", draws, "mediator.bootstrap.share_with=[rd]", shared=process_cache)
    shared = run(cache, tmp_path / "t7", "table7_mediation_rd", draws, shared=process_cache)
    assert "shared with an earlier job" in "\n".join(shared.tables["table"].notes)
    assert "shared" not in "\n".join(alone.tables["table"].notes)
    boot = lambda r: r.tests[r.tests.test.str.startswith("bootstrap")].reset_index(drop=True)  # noqa: E731
    assert len(boot(shared)) == 8
    for column in ("estimate", "se", "ci_low", "ci_high"):
        np.testing.assert_allclose(boot(shared)[column], boot(alone)[column], rtol=1e-10)


def test_a_bootstrap_shared_with_an_unknown_column_fails_before_estimation(cache, tmp_path):
    from eqexp.spec import SpecError

    with pytest.raises(SpecError, match=r"'mediator.bootstrap.share_with' names the variable 'r_and_d', which is not a column"):
        run(cache, tmp_path, "table6_mediation_humancapital", "mediator.bootstrap.share_with=[r_and_d]")


def test_table8_groups_side_by_side(cache, tmp_path):
    result = run(cache, tmp_path, "table8_ownership", "hetero.permutation.draws=200")
    table = result.tables["table"]
    assert table.header[1] == ["", "State-Owned", "Non state owned"]
    panel = load(result.spec.data).panel
    soe_rows = (panel.soe == 1).sum()
    assert result.fits[0].n_obs + result.fits[0].steps[1].dropped == soe_rows
    assert set(result.tests.test) >= {"utest", "wald", "suest", "bdiff"}


def test_robustness_is_only_yaml(cache, tmp_path):
    result = run(cache, tmp_path, "robust_drop2010_province")
    panel = load(result.spec.data).panel
    (step,) = [s for s in result.steps if s.step.startswith("sample")]
    assert step.dropped == (panel.year == 2010).sum()
    assert result.fits[1].vcov_label == "Province" and result.fits[1].df_t == panel.province.nunique() - 1
    coefs = pd.read_csv(tmp_path / "coefficients.csv")
    assert np.isfinite(coefs.std_error).all()


def test_robustness_reports_the_wild_cluster_bootstrap(cache, tmp_path):
    """The preset asks for the WCR bootstrap: its p-values and intervals reach tests.csv and the table notes."""
    result = run(cache, tmp_path, "robust_drop2010_province")
    tests = hypothesis.read(tmp_path / "tests.csv")
    wild = tests[tests.test == "wild"].set_index(["model", "hypothesis"])
    coefs = pd.read_csv(tmp_path / "coefficients.csv").set_index(["model", "term"])
    provinces = load(result.spec.data).panel.query("year != 2010").province.nunique()
    for model in ("(1)", "(2)"):
        assert int(wild.draws[model, "market"]) == 9999 and wild.distribution[model, "market"] == "wild bootstrap (rademacher)"  # 31 clusters: Rademacher
        assert int(wild.clusters[model, "market"]) == provinces
        for term in ("market", "market_sq"):
            estimate = coefs.loc[(model, term), "estimate"]
            assert float(wild.ci_low[model, term]) < estimate < float(wild.ci_high[model, term])
            assert 0 <= float(wild.p_value[model, term]) <= 1
        assert 0 <= float(wild.p_value[model, "joint"]) <= 1
    notes = result.tables["table"].notes
    assert sum(n.startswith("Wild cluster bootstrap") for n in notes) == 2


def test_robustness_tests_reach_each_models_mlflow_metrics_under_uniform_names(cache, tmp_path):
    """The wild bootstrap's and the two-lines test's numbers go to the model's run, named alike for any treatment term."""
    from eqexp.model_runs import model_metrics

    result = run(cache, tmp_path, "robust_drop2010_province")
    rows = result.tests.set_index(["model", "test", "hypothesis"])
    for f in result.fits:
        metrics = model_metrics(f, "market", result.tests)
        assert metrics["wild_p"] == float(rows.p_value[f.model, "wild", "market"])
        assert metrics["wild_ci_high_sq"] == float(rows.ci_high[f.model, "wild", "market_sq"])
        assert metrics["wild_joint_p"] == float(rows.p_value[f.model, "wild", "joint"])
        assert metrics["two_lines_breakpoint"] == float(rows.estimate[f.model, "two_lines", "u_shape"])
        assert metrics["two_lines_confirmed"] == float(bool(rows.reject[f.model, "two_lines", "u_shape"]))
