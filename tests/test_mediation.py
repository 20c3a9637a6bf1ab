"""Mediation: Sobel variants, the firm-cluster bootstrap, CIs and the Wen & Ye decision.

Stata's `sgmediation` is the reference and no Stata is at hand; its worked example (UCLA's FAQ on
hsbdemo) could not be retrieved with its Sobel numbers, so the Sobel variants are checked against
their formulas only."""

import math

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats

from eqexp.inference import mediation
from eqexp.inference.firm_moments import bootstrap_weights
from eqexp.inference.mediation import (
    bias_corrected_ci,
    bootstrap_indirect,
    percentile_ci,
    proportion_mediated,
    sobel,
    wen_ye_decision,
)
from numerics import in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

TIGHT = pf.MapDemeaner(fixef_tol=1e-13)
AT = {"P10": 1.0, "P50": 3.0, "P90": 5.0}
SEED = 11


def make_panel(n_firms: int = 200, seed: int = 0) -> pd.DataFrame:
    """Firm-year panel: M inverted-U in X, Y depends on X, X² and M; firm and year effects."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"firm": np.repeat(np.arange(n_firms), 10), "year": np.tile(np.arange(10), n_firms)})
    df = df[rng.random(len(df)) < 0.85].reset_index(drop=True)
    alpha = rng.normal(size=n_firms)[df.firm]
    year = 0.1 * df.year
    df["x"] = 3 + 0.5 * alpha + rng.normal(size=len(df))
    df["size"] = rng.normal(size=len(df))
    df["m"] = 0.5 * df.x - 0.05 * df.x**2 + 0.2 * df["size"] + alpha + year + rng.normal(size=len(df))
    df["y"] = 0.3 * df.x - 0.03 * df.x**2 + 0.4 * df.m + alpha + year + rng.normal(size=len(df))
    return in_test_order(df.assign(x2=df.x**2))


def run(df: pd.DataFrame, draws: int = 200, square_mediator: bool = True, **kw):
    return bootstrap_indirect(
        df, "y", "m", "x", square_outcome=True, square_mediator=square_mediator,
        controls=["size"], firm="firm", other_fe=["year"], draws=draws, seed=SEED, at=AT,
        **{"progress": None, **kw},
    )


def equations(df: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    a = pf.feols("m ~ x + x2 + size | firm + year", df, demeaner=TIGHT).coef()
    b = pf.feols("y ~ x + x2 + size + m | firm + year", df, demeaner=TIGHT).coef()
    return a, b


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return make_panel()


@pytest.fixture(scope="module")
def result(panel):
    return run(panel)


def test_sobel_variants_match_their_formulas():
    a, sa, b, sb = 0.5, 0.1, -0.3, 0.12
    out = sobel(a, sa, b, sb)
    for name, var in [
        ("sobel", a**2 * sb**2 + b**2 * sa**2),
        ("aroian", a**2 * sb**2 + b**2 * sa**2 + sa**2 * sb**2),
        ("goodman", a**2 * sb**2 + b**2 * sa**2 - sa**2 * sb**2),
    ]:
        z = a * b / math.sqrt(var)
        assert out[f"{name}_z"] == pytest.approx(z, abs=1e-12)
        assert out[f"{name}_p"] == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))), abs=1e-12)
    assert out["ab"] == pytest.approx(-0.15)
    assert math.isnan(sobel(0.01, 1.0, 0.01, 1.0)["goodman_z"])  # negative Goodman variance


def test_point_estimates_equal_pyfixest(panel, result):
    a, b = equations(panel)
    assert result.names == ("ab", "theta_P10", "theta_P50", "theta_P90")
    expected = [a["x"] * b["m"], *((a["x"] + 2 * a["x2"] * x) * b["m"] for x in AT.values())]
    np.testing.assert_allclose(result.estimate, expected, rtol=0, atol=1e-8)


def test_a_draw_equals_pyfixest_on_the_resampled_firms_with_new_ids(panel, result):
    firms = np.sort(panel.firm.unique())
    weights = bootstrap_weights(np.random.default_rng(SEED), len(firms), 1)[0].astype(int)
    resampled = pd.concat(
        [panel[panel.firm == f].assign(firm=f"{f}#{k}") for f, w in zip(firms, weights) for k in range(w)],
        ignore_index=True,
    )
    a, b = equations(resampled)
    expected = [a["x"] * b["m"], *((a["x"] + 2 * a["x2"] * x) * b["m"] for x in AT.values())]
    np.testing.assert_allclose(result.draws[0], expected, rtol=0, atol=1e-8)


def test_bootstrap_weights_whole_firms(panel, monkeypatch):
    applied = []

    def spy(rng, n_firms, size):
        applied.append(bootstrap_weights(rng, n_firms, size))
        return applied[-1]

    monkeypatch.setattr(mediation, "bootstrap_weights", spy)
    run(panel, draws=50)
    weights = np.concatenate(applied)
    # One integer count per firm (not per row): each firm's rows enter together w_i times,
    # and every draw holds as many firms as the sample.
    assert weights.shape == (50, panel.firm.nunique()) != (50, len(panel))
    assert np.all(weights == np.round(weights)) and np.all(weights.sum(axis=1) == weights.shape[1])


def test_one_bootstrap_of_two_mediators_gives_each_its_own_draws(panel):
    """Moments summed for two mediators on the same draws (what a sweep over mediation channels
    shares) give each mediator the bootstrap it would get alone, draw by draw."""
    df = panel.assign(m2=0.3 * panel.x + 0.5 * panel.m + np.random.default_rng(4).normal(size=len(panel)))
    columns = mediation.bootstrap_columns("x", True, ["size"], ["m", "m2"])
    assert columns == ["x", "x^2", "size", "m", "m2"]
    drawn = mediation.bootstrap_moments(df, "y", columns, "firm", ["year"], 60, SEED, progress=None)
    assert drawn.moments.cross.size == 0 and drawn.moments.cross.base is None  # kept without the per-firm entries
    for m in ("m", "m2"):
        shared = mediation.indirect_effects(drawn, "y", m, "x", True, True, ["size"], AT)
        alone = bootstrap_indirect(df, "y", m, "x", True, True, ["size"], "firm", ["year"], 60, SEED, AT, progress=None)
        np.testing.assert_allclose(shared.draws, alone.draws, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(shared.estimate, alone.estimate, rtol=1e-10)
        np.testing.assert_allclose(shared.bias_corrected, alone.bias_corrected, rtol=1e-10)


def test_result_summaries_follow_from_the_draws(result):
    np.testing.assert_allclose(result.se, result.draws.std(axis=0, ddof=1))
    np.testing.assert_allclose(result.percentile, np.quantile(result.draws, [0.025, 0.975], axis=0).T)
    np.testing.assert_allclose(result.bias_corrected, bias_corrected_ci(result.draws, result.estimate))
    assert np.all(result.percentile[:, 0] < result.estimate) and np.all(result.estimate < result.percentile[:, 1])
    rows = {(t.test, t.hypothesis): t for t in result.tests()}
    assert rows["bootstrap_bc", "ab"].ci_low == result.bias_corrected[0, 0]
    assert rows["bootstrap_percentile", "theta_P90"].se == result.se[3] and rows["bootstrap_bc", "ab"].draws == 200


def test_linear_mediator_gives_constant_theta(panel):
    r = run(panel, draws=20, square_mediator=False)
    np.testing.assert_allclose(r.draws[:, 1:], np.repeat(r.draws[:, :1], 3, axis=1), atol=1e-14)
    a = pf.feols("m ~ x + size | firm + year", panel, demeaner=TIGHT).coef()["x"]
    b = pf.feols("y ~ x + x2 + size + m | firm + year", panel, demeaner=TIGHT).coef()["m"]
    assert r.estimate[0] == pytest.approx(a * b, abs=1e-8)


def test_bias_corrected_ci_formula_on_known_draws():
    draws = np.linspace(0, 1, 1001)[:, None]
    estimate = np.array([0.6])  # 600 of 1001 draws lie below
    z0 = stats.norm.ppf(600 / 1001)
    lo, hi = stats.norm.cdf(2 * z0 - 1.959963984540054), stats.norm.cdf(2 * z0 + 1.959963984540054)
    expected = [np.quantile(draws[:, 0], lo), np.quantile(draws[:, 0], hi)]
    np.testing.assert_allclose(bias_corrected_ci(draws, estimate)[0], expected, atol=1e-12)
    assert lo > 0.025 and hi > 0.975  # shifted towards the side the estimate sits on
    # Half the draws below the estimate: z0 = 0 and BC equals the percentile interval.
    even = np.linspace(0, 1, 1000)[:, None]
    np.testing.assert_allclose(bias_corrected_ci(even, np.array([0.5])), percentile_ci(even), atol=1e-12)


def test_progress_is_reported(panel):
    seen = []
    run(panel, draws=30, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (30, 30)


@pytest.mark.parametrize(
    ("args", "start", "fragment"),
    [
        ((0.05, 0.01, 0.4, 0.001, 0.1, 0.001, 0.01, 0.001), "Partial mediation", "share mediated ab/c = 80.0%"),
        ((0.05, 0.01, 0.4, 0.001, 0.1, 0.001, 0.01, 0.30), "Full mediation", "are both significant"),
        ((0.05, 0.01, 0.4, 0.001, 0.1, 0.001, -0.02, 0.01), "Suppression", "|ab/c′| = 200.0%"),
        ((0.05, 0.01, 0.4, 0.20, 0.1, 0.001, 0.01, 0.001), "Partial mediation", "not both significant, so the bootstrap CI decides"),
        ((0.05, 0.20, 0.4, 0.20, 0.1, 0.001, 0.01, 0.001), "No indirect effect", "framed as suppression"),
    ],
)
def test_wen_ye_steps(args, start, fragment):
    ci = (-0.01, 0.07) if start == "No indirect effect" else (0.01, 0.07)
    sentence = wen_ye_decision(*args, boot_ci=ci)
    assert sentence.startswith(start) and fragment in sentence


def test_proportion_mediated():
    assert proportion_mediated(0.4, 0.1, 0.05) == pytest.approx(0.8)
