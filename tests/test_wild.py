"""The wild cluster bootstrap (restricted, WCR) against a brute-force one that re-estimates
every draw with explicit dummies, and its size in a Monte Carlo with few clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eqexp.analyses.wild import _note, wild_design
from eqexp.estimate import Workspace, fit
from eqexp.inference.wild import WildBootstrap, WildError, weight_blocks
from eqexp.spec import SpecError, VcovSpec, load_spec
from numerics import in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

FE = ["firm", "year"]
TIE = 1e-8  # the stated tie rule: a draw within this share of the observed statistic counts as at least as extreme


def small_panel(seed: int = 1, n_firms: int = 90, n_years: int = 6, n_clusters: int = 9, effect: float = 0.3) -> pd.DataFrame:
    """Firms nested in unequal clusters (provinces), an unbalanced panel, a treatment and its square."""
    rng = np.random.default_rng(seed)
    size = np.exp(rng.normal(size=n_clusters))  # unequal cluster sizes, where CRV1 over-rejects most
    province = rng.choice(n_clusters, n_firms, p=size / size.sum())
    firm, year = np.repeat(np.arange(n_firms), n_years), np.tile(np.arange(n_years), n_firms)
    prov = province[firm]
    shock = rng.normal(size=(n_clusters, n_years))
    x = 0.3 * rng.normal(size=len(firm)) + shock[prov, year]  # varies most at cluster-year, as market integration does
    df = pd.DataFrame({"firm": firm, "year": year, "province": prov, "x": x, "x_sq": x**2, "c": rng.normal(size=len(firm))})
    df["y"] = (effect * df.x - 0.1 * effect * df.x_sq + 0.2 * df.c + rng.normal(size=n_firms)[firm]
               + rng.normal(size=(n_clusters, n_years))[prov, year] + rng.normal(size=len(firm)))
    return in_test_order(df[rng.random(len(df)) > 0.15].reset_index(drop=True))  # gaps: an unbalanced panel


def bootstrap_of(df: pd.DataFrame, regressors: list[str], weights: str, draws: int, seed: int, cluster: str = "province"):
    workspace = Workspace(df)
    f = fit(df, "y", regressors, FE, VcovSpec("c", "CRV1", [cluster], "C"), workspace=workspace)
    design = wild_design(workspace, f, cluster, None)
    sample = df.iloc[workspace.sample(["y", *regressors, cluster], FE).positions].reset_index(drop=True)
    return WildBootstrap(design, f.tidy["estimate"].to_numpy(), f.vcov, weights, draws, seed), f, sample


def dummies(df: pd.DataFrame) -> np.ndarray:
    """Every firm's dummy and every year's but the first: the fixed effects, explicitly, full rank."""
    return np.column_stack([pd.get_dummies(df.firm).to_numpy(float), pd.get_dummies(df.year).to_numpy(float)[:, 1:]])


def brute_force(sample: pd.DataFrame, regressors: list[str], restricted: dict[str, float], weights: np.ndarray,
                clusters: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Re-estimate every draw: y* = fitted + v_g·residual of the model under H0, then OLS with dummies and CRV1.

    Returns each draw's coefficients of the restricted terms minus their null values, and their CRV1 covariance.
    """
    d = dummies(sample)
    y = sample.y.to_numpy() - sum(c * sample[t].to_numpy() for t, c in restricted.items())
    free = np.column_stack([sample[[r for r in regressors if r not in restricted]].to_numpy(), d])
    fitted_free = free @ np.linalg.lstsq(free, y, rcond=None)[0]
    u = y - fitted_free
    base = fitted_free + sum(c * sample[t].to_numpy() for t, c in restricted.items())
    z = np.column_stack([sample[regressors].to_numpy(), d])
    bread = np.linalg.inv(z.T @ z)
    which = [regressors.index(t) for t in restricted]
    numerators, covariances = [], []
    for v in weights:
        y_star = base + v[clusters] * u
        beta = bread @ (z.T @ y_star)
        scores = np.column_stack([np.bincount(clusters, z[:, i] * (y_star - z @ beta)) for i in range(z.shape[1])])
        vcov = factor * bread @ (scores.T @ scores) @ bread
        numerators.append(beta[which] - np.array(list(restricted.values())))
        covariances.append(vcov[np.ix_(which, which)])
    return np.array(numerators), np.array(covariances)


@pytest.mark.parametrize("weights", ["rademacher", "webb"])
def test_wild_t_draws_equal_brute_force_reestimation(weights):
    regressors = ["x", "x_sq", "c"]
    boot, f, sample = bootstrap_of(small_panel(), regressors, weights, 199, seed=7)
    w = np.concatenate(list(weight_blocks(boot.weights, 199, boot.design.n_clusters, 7)))
    for j, term in enumerate(["x", "x_sq"]):
        for c in (0.0, 0.37):  # the null value: 0 for p-values, others for the interval's inversion
            num, cov = brute_force(sample, regressors, {term: c}, w, boot.design.clusters, boot.factor)
            expected = num[:, 0] / np.sqrt(cov[:, 0, 0])
            np.testing.assert_allclose(boot.t_draws(j, c), expected, rtol=1e-10, atol=1e-10)


def test_wild_joint_wald_equals_brute_force_and_its_p_value():
    regressors = ["x", "x_sq", "c"]
    boot, f, sample = bootstrap_of(small_panel(seed=3), regressors, "webb", 199, seed=11)
    w = np.concatenate(list(weight_blocks("webb", 199, boot.design.n_clusters, 11)))
    num, cov = brute_force(sample, regressors, {"x": 0.0, "x_sq": 0.0}, w, boot.design.clusters, boot.factor)
    wald_draws = np.einsum("bq,bq->b", num, np.linalg.solve(cov, num[:, :, None])[:, :, 0])
    b = f.tidy["estimate"].to_numpy()[:2]
    wald = b @ np.linalg.solve(f.vcov[:2, :2], b)
    joint = boot.joint([0, 1])
    assert joint.wald == pytest.approx(wald, rel=1e-12)
    assert joint.p_value == pytest.approx(np.mean(wald_draws >= wald * (1 - TIE)), abs=1e-12)


def test_wild_p_value_and_interval_follow_from_brute_force_draws():
    """p(0) is the share of brute-force |t*| ≥ |t|, ties counted; at the interval's ends p crosses α (just inside > α ≥ just outside)."""
    regressors = ["x", "x_sq", "c"]
    boot, f, sample = bootstrap_of(small_panel(seed=5), regressors, "rademacher", 399, seed=2)
    w = np.concatenate(list(weight_blocks("rademacher", 399, boot.design.n_clusters, 2)))
    term = boot.term(0)
    b, se = f.tidy["estimate"][0], f.tidy["std_error"][0]

    def p_brute(c: float) -> float:
        num, cov = brute_force(sample, regressors, {"x": c}, w, boot.design.clusters, boot.factor)
        return float(np.mean(np.abs(num[:, 0] / np.sqrt(cov[:, 0, 0])) >= abs((b - c) / se) * (1 - TIE)))

    assert term.p_value == pytest.approx(p_brute(0.0), abs=1e-12)
    assert term.ci_low < b < term.ci_high
    eps = 1e-6 * se
    for end, inward in ((term.ci_low, 1), (term.ci_high, -1)):
        assert p_brute(end + inward * eps) > 0.05 >= p_brute(end - inward * eps)


def test_an_enumerated_p_value_counts_its_exact_ties_whatever_the_order_of_rows_and_clusters():
    """8 clusters: all 256 sign patterns. The identity pattern and its mirror give |t*| = |t| in exact
    arithmetic; they are counted however the sums are ordered: the rows shuffled, the clusters renumbered."""
    regressors = ["x", "x_sq", "c"]
    df = small_panel(seed=5)
    boot, f, _ = bootstrap_of(df, regressors, "rademacher", 399, seed=2)
    assert boot.enumerated and boot.draws == 256
    t = boot.t_draws(0)
    observed = f.tidy["estimate"][0] / f.tidy["std_error"][0]
    tied = np.isclose(np.abs(t), abs(observed), rtol=1e-12, atol=0)
    assert tied.sum() >= 2  # the identity pattern and its mirror
    counts = {round(boot.term(0).p_value * 256)}
    rng = np.random.default_rng(0)
    for _ in range(3):
        relabel = rng.permutation(df.province.max() + 1)
        other = df.assign(province=relabel[df.province]).sample(frac=1, random_state=int(rng.integers(1 << 31)))
        again, _, _ = bootstrap_of(other.reset_index(drop=True), regressors, "rademacher", 399, seed=2)
        counts.add(round(again.term(0).p_value * 256))
    assert counts == {int(((np.abs(t) > abs(observed)) & ~tied).sum() + tied.sum())}


def test_rademacher_with_few_clusters_enumerates_every_sign_pattern():
    df = small_panel(seed=2, n_clusters=5)
    boot, _, _ = bootstrap_of(df, ["x", "c"], "rademacher", 999, seed=1)
    assert boot.enumerated and boot.draws == 2**5
    patterns = np.concatenate(boot.blocks)
    assert len({tuple(p) for p in patterns}) == 32 and set(np.unique(patterns)) == {-1.0, 1.0}


def test_auto_weights_are_webb_below_twelve_clusters_and_the_note_says_so():
    boot, f, _ = bootstrap_of(small_panel(seed=4, n_clusters=9), ["x", "c"], "auto", 99, seed=1)
    assert boot.weights == "webb"
    note = _note(f, boot.run(["x"]), {}, "province")
    assert "Webb" in note and "fewer than 12 clusters" in note
    many, _, _ = bootstrap_of(small_panel(seed=4, n_firms=200, n_clusters=20), ["x", "c"], "auto", 99, seed=1)
    assert many.weights == "rademacher"


def test_webb_weights_take_six_values_with_mean_zero_and_variance_one():
    w = np.concatenate(list(weight_blocks("webb", 60_000, 10, 3)))
    assert len(np.unique(w)) == 6
    assert abs(w.mean()) < 0.01 and abs(w.var() - 1) < 0.01


def _rejections(seed: int) -> tuple[bool, bool]:
    """One world without an effect, 15 unequal clusters: does WCR (399 draws) / CRV1 reject at 5 %?"""
    df = small_panel(seed=seed, n_firms=150, n_years=5, n_clusters=15, effect=0.0)
    boot, f, _ = bootstrap_of(df, ["x", "c"], "rademacher", 399, seed=seed)
    t = boot.t_draws(0)
    wcr = np.mean(np.abs(t) >= abs(f.tidy["statistic"][0])) <= 0.05
    return bool(wcr), bool(f.tidy["p_value"][0] <= 0.05)


@pytest.mark.slow
def test_monte_carlo_wcr_has_its_size_with_fifteen_clusters_and_crv1_over_rejects():
    worlds = [_rejections(seed) for seed in range(400)]
    wcr, crv1 = np.mean([w for w, _ in worlds]), np.mean([c for _, c in worlds])
    assert 0.03 <= wcr <= 0.08, wcr
    assert crv1 > wcr, (crv1, wcr)


def test_bootstrap_specs_that_cannot_run_are_named_before_estimation():
    base = {"vcov": {"name": "province", "type": "CRV1", "cluster": ["province"], "bootstrap": {"type": "wild"}}}
    assert load_spec(base).vcov.bootstrap.draws == 9999
    bad = [  # (change, what the message names)
        ({"cluster": ["firm_id", "year"]}, "one cluster variable"),
        ({"type": "hetero", "cluster": []}, "needs vcov.type CRV1"),
        ({"bootstrap": {"type": "wild", "weights": "mammen"}}, "weights is 'mammen'"),
        ({"bootstrap": {"type": "wild", "draws": 10}}, "at least 99"),
        ({"bootstrap": {"type": "pairs"}}, "only type is 'wild'"),
    ]
    for change, named in bad:
        with pytest.raises(SpecError, match="wild bootstrap") as err:
            load_spec({"vcov": {**base["vcov"], **change}})
        assert named in str(err.value)


def test_fixed_effects_not_nested_in_clusters_with_many_levels_are_refused():
    """Firms that move between clusters make the firm effect non-nested: refused with a named error, not a wrong answer."""
    df = small_panel(seed=6, n_firms=3000, n_years=2, n_clusters=10)
    df["province"] = np.random.default_rng(0).integers(0, 10, len(df))  # firms spread over clusters
    with pytest.raises(WildError, match="not nested"):
        bootstrap_of(df, ["x", "c"], "webb", 99, seed=1)
