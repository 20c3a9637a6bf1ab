"""Group-difference tests: interacted model, Wald, suest-style z and bdiff permutation.

Stata's `bdiff` (and `suest`) is the reference and no Stata is at hand. Its author's worked example
(Lian 2017, nlsw88) reports permutation p-values drawn from Stata's random-number stream, which
cannot be reproduced here; the group regressions are checked against pyfixest instead."""

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from scipy import stats

from eqexp.inference.groups import (
    interacted_model,
    permutation_test,
    permutation_tests,
    permute_firm_labels,
    permuted_members,
    suest_difference,
    wald_equality,
)
from numerics import in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

TIGHT = pf.MapDemeaner(fixef_tol=1e-13)
REGRESSORS = ["x", "x2", "z"]
TERMS = ["x", "x2"]


def make_panel(slope_b: float, n_firms: int = 400, seed: int = 0) -> pd.DataFrame:
    """Firm-year panel, 2004-2013; firm-level groups A/B (x slope 0.8 vs slope_b) and
    east/central/west, plus a time-varying period split."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"firm": np.repeat(np.arange(n_firms), 10), "year": np.tile(np.arange(2004, 2014), n_firms)})
    df = df[rng.random(len(df)) < 0.8].reset_index(drop=True)
    df["g"] = np.where(df.firm < n_firms // 2, "A", "B")
    df["region"] = np.array(["central", "east", "west"])[df.firm % 3]
    df["period"] = np.where(df.year >= 2009, "late", "early")
    alpha = rng.normal(size=n_firms)[df.firm]
    df["x"] = 2 + 0.5 * alpha + rng.normal(size=len(df))
    df["x2"] = df.x**2
    df["z"] = rng.normal(size=len(df))
    slope = np.where(df.g == "A", 0.8, slope_b)
    df["y"] = slope * df.x - 0.1 * df.x2 + 0.3 * df.z + alpha + 0.05 * (df.year - 2004) + rng.normal(size=len(df))
    return in_test_order(df)


def separate(df: pd.DataFrame) -> np.ndarray:
    fit = pf.feols("y ~ x + x2 + z | firm + year", df, demeaner=TIGHT)
    return fit.coef()[REGRESSORS].to_numpy()


def interacted(df: pd.DataFrame, group: str):
    return interacted_model(df, "y", REGRESSORS, group, "firm", ["year"], demeaner=TIGHT)


@pytest.fixture(scope="module")
def same() -> pd.DataFrame:
    return make_panel(slope_b=0.8)


@pytest.fixture(scope="module")
def differ() -> pd.DataFrame:
    return make_panel(slope_b=0.3, seed=1)


@pytest.mark.parametrize("group", ["g", "region", "period"])
def test_interacted_model_equals_separate_regressions(same, group):
    model = interacted(same, group)
    assert model.groups == tuple(sorted(same[group].unique()))
    for g, level in enumerate(model.groups):
        np.testing.assert_allclose(model.coef[g], separate(same[same[group] == level]), rtol=0, atol=1e-8)
    cells = same.groupby(["firm", group]).size()  # pyfixest drops singleton firm^group cells
    assert model.n_clusters == cells[cells > 1].index.get_level_values("firm").nunique()
    assert model.vcov.shape == (3 * len(model.groups),) * 2


def quadratic_form(model, g: int, h: int) -> float:
    idx = [[model.position(k, t) for t in TERMS] for k in (g, h)]
    gap = model.coef.ravel()[idx[0]] - model.coef.ravel()[idx[1]]
    v = model.vcov
    var = v[np.ix_(idx[0], idx[0])] + v[np.ix_(idx[1], idx[1])] - v[np.ix_(idx[0], idx[1])] - v[np.ix_(idx[1], idx[0])]
    return float(gap @ np.linalg.inv(var) @ gap)


def test_wald_two_groups_is_the_hand_quadratic_form(differ):
    model = interacted(differ, "g")
    (test,) = wald_equality(model, TERMS)
    chi2 = quadratic_form(model, 0, 1)
    assert test.chi2 == pytest.approx(chi2, rel=1e-10)
    assert (test.q, test.df_denom) == (2, differ.firm.nunique() - 1)
    assert test.p_chi2 == pytest.approx(stats.chi2.sf(chi2, 2), rel=1e-10)
    assert test.p_f == pytest.approx(stats.f.sf(chi2 / 2, 2, differ.firm.nunique() - 1), rel=1e-10)
    assert test.p_f < 0.01
    chi2_test, f_test = test.tests()
    assert (chi2_test.hypothesis, chi2_test.statistic, chi2_test.df, chi2_test.p_value) == ("A vs B", test.chi2, 2, test.p_chi2)
    assert (f_test.statistic, f_test.df, f_test.df_denom, f_test.p_value) == (test.f, 2, test.df_denom, test.p_f)
    assert chi2_test.reject and f_test.reject and chi2_test.verdict.startswith("Rejected at 0.05")


def test_wald_three_groups_joint_then_pairs(same):
    model = interacted(same, "region")
    joint, *pairs = wald_equality(model, TERMS)
    assert joint.groups == ("central", "east", "west") and joint.q == 4
    assert [p.groups for p in pairs] == [("central", "east"), ("central", "west"), ("east", "west")]
    for p, (g, h) in zip(pairs, [(0, 1), (0, 2), (1, 2)]):
        assert p.q == 2 and p.chi2 == pytest.approx(quadratic_form(model, g, h), rel=1e-10)
    # Joint: stack both contrasts against the first group.
    idx = [[model.position(k, t) for t in TERMS] for k in range(3)]
    r = np.zeros((4, model.vcov.shape[0]))
    for row, (k, j) in enumerate([(1, 0), (1, 1), (2, 0), (2, 1)]):
        r[row, idx[0][j]], r[row, idx[k][j]] = 1, -1
    gap = r @ model.coef.ravel()
    assert joint.chi2 == pytest.approx(gap @ np.linalg.solve(r @ model.vcov @ r.T, gap), rel=1e-10)


def test_suest_difference_uses_the_covariance_only_when_firms_overlap(same):
    by_firm = suest_difference(interacted(same, "g"), TERMS)
    by_period = suest_difference(interacted(same, "period"), TERMS)
    for d in by_firm:  # disjoint clusters: Cov(b_A, b_B) = 0, suest z = naive z
        assert d.se == pytest.approx(d.se_naive, rel=1e-8)
    model = interacted(same, "period")
    for d, term in zip(by_period, TERMS):
        i, j = model.position(0, term), model.position(1, term)
        assert d.diff == pytest.approx(model.coef.flat[i] - model.coef.flat[j], abs=1e-14)
        assert d.se == pytest.approx(np.sqrt(model.vcov[i, i] + model.vcov[j, j] - 2 * model.vcov[i, j]))
        assert d.se != pytest.approx(d.se_naive, rel=1e-3)  # same firms in both periods
        assert d.z == pytest.approx(d.diff / d.se) and d.p == pytest.approx(2 * stats.norm.sf(abs(d.z)))
        assert d.z_naive == pytest.approx(d.diff / d.se_naive)


def permute(df: pd.DataFrame, **kw):
    kw = {"draws": 300, "progress": None, **kw}
    return permutation_test(df, "y", REGRESSORS, "g", TERMS, seed=3, **kw)


def test_permutation_draw_equals_pyfixest_on_relabelled_firms(differ):
    result = permute(differ, draws=5)
    firms = np.sort(differ.firm.unique())
    in_a = differ.groupby("firm").g.first().reindex(firms).eq("A").to_numpy(float)
    relabelled = permute_firm_labels(np.random.default_rng(3), in_a, 1)[0].astype(bool)
    assert relabelled.sum() == in_a.sum()  # group sizes in firms are kept
    new_a = differ.firm.isin(firms[relabelled])
    expected = separate(differ[new_a])[:2] - separate(differ[~new_a])[:2]
    np.testing.assert_allclose(result.draws[0], expected, rtol=0, atol=1e-8)
    observed = separate(differ[differ.g == "A"])[:2] - separate(differ[differ.g == "B"])[:2]
    np.testing.assert_allclose(result.observed, observed, rtol=0, atol=1e-8)


def test_a_small_group_is_permuted_as_sets_of_firms_on_all_firms_moments(differ, monkeypatch):
    """A pair whose smaller group holds at most 1/8 of its firms (here 60 of 480, beside 120 firms
    of a third group left out) is drawn as sets summed on all firms' moments, without a copy of
    the pair's: each draw equals pyfixest on the relabelled firms, and the dense 0/1 weights
    over the pair's own moments (the other path) give the same draws and p-values."""
    from eqexp.inference import groups

    df = differ.assign(size=np.select([differ.firm % 20 == 0, differ.firm % 20 < 5], ["small", "other"], "large"))
    df["y"] += np.where(df["size"] == "small", 0.3 * df.x, 0.0)
    sparse, = permutation_tests(df, "y", REGRESSORS, "size", TERMS, [("small", "large")], "firm", draws=40, seed=3, progress=None)
    pair = df[df["size"] != "other"]
    firms = np.sort(pair.firm.unique())
    in_large = pair.groupby("firm")["size"].first().reindex(firms).eq("large").to_numpy(float)
    members, value = permuted_members(np.random.default_rng(3), in_large, 1)
    assert value == 0.0 and members.shape == (1, (1 - in_large).sum())  # the small group is the drawn set
    new_small = pair.firm.isin(firms[members[0]])
    expected = separate(pair[~new_small])[:2] - separate(pair[new_small])[:2]
    np.testing.assert_allclose(sparse.draws[0], expected, rtol=0, atol=1e-8)
    monkeypatch.setattr(groups, "_SPARSE_SHARE", 0.0)
    dense, = permutation_tests(df, "y", REGRESSORS, "size", TERMS, [("small", "large")], "firm", draws=40, seed=3, progress=None)
    np.testing.assert_allclose(sparse.draws, dense.draws, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sparse.observed, dense.observed, rtol=1e-9)
    np.testing.assert_array_equal(sparse.p_upper, dense.p_upper)


def test_permutation_p_values(same, differ):
    null = permute(same)
    assert np.all(null.p_two_sided > 0.1)
    alt = permute(differ)
    assert alt.observed[0] > 0.3 and alt.p_upper[0] < 0.01 and alt.p_two_sided[0] < 0.05
    tie = 1e-8 * np.abs(alt.observed)  # the stated tie rule: a draw this close to the observed difference counts in both tails
    np.testing.assert_allclose(alt.p_upper, np.mean(alt.draws >= alt.observed - tie, axis=0))
    np.testing.assert_allclose(alt.p_min_tail, np.minimum(alt.p_upper, np.mean(alt.draws <= alt.observed + tie, axis=0)))
    upper = next(t for t in alt.tests() if t.test == "bdiff")
    assert (upper.hypothesis, upper.p_value, upper.estimate, upper.draws) == ("x: A vs B", alt.p_upper[0], alt.observed[0], len(alt.draws))


def test_permutation_refuses_a_group_that_varies_within_firm(same):
    with pytest.raises(ValueError, match="not exchangeable"):
        permutation_test(same, "y", REGRESSORS, "period", TERMS, progress=None)
    with pytest.raises(ValueError, match="two groups"):
        permutation_test(same, "y", REGRESSORS, "region", TERMS, progress=None)


def test_permutation_reports_progress(same):
    seen = []
    permute(same, draws=10, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (10, 10)
