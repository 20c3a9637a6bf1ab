"""FirmMoments re-estimates `y ~ x | firm + year` exactly for any whole-firm reweighting."""

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from eqexp.inference.firm_moments import FirmMoments, bootstrap_weights, run_draws
from numerics import assert_close_on_scale, in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

X = ["x", "x2", "z"]
TIGHT = pf.MapDemeaner(fixef_tol=1e-13)


def make_panel(n_firms: int = 300, seed: int = 0) -> pd.DataFrame:
    """Unbalanced firm-year panel, 2004-2013, firm and year effects, quadratic in x."""
    rng = np.random.default_rng(seed)
    firm = np.repeat(np.arange(n_firms), 10)
    year = np.tile(np.arange(2004, 2014), n_firms)
    df = pd.DataFrame({"firm": firm, "year": year})[rng.random(10 * n_firms) < 0.8]
    alpha = rng.normal(size=n_firms)[df.firm]
    df["x"] = 2 + 0.5 * alpha + rng.normal(size=len(df))
    df["x2"] = df.x**2
    df["z"] = rng.normal(size=len(df))
    noise = rng.normal(size=(2, len(df)))
    df["y"] = 0.8 * df.x - 0.2 * df.x2 + 0.3 * df.z + alpha + 0.05 * (df.year - 2004) + noise[0]
    df["m"] = 0.4 * df.x + 0.1 * df.z + alpha + noise[1]
    return in_test_order(df.reset_index(drop=True))


def fixest(df: pd.DataFrame, y: str = "y") -> np.ndarray:
    fit = pf.feols(f"{y} ~ {' + '.join(X)} | firm + year", df, demeaner=TIGHT)
    return fit.coef()[X].to_numpy()


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return make_panel()


@pytest.fixture(scope="module")
def moments(panel: pd.DataFrame) -> FirmMoments:
    return FirmMoments.from_frame(panel, ["y", "m"], X, "firm", ["year"])


def test_moments_built_in_small_blocks_are_each_firms_own_cross_products(panel, moments, monkeypatch):
    """Blocks of a few rows (firms of one size split across blocks) give the same sums, and each
    firm's entry is its own firm-demeaned [x, y, year dummies but the last]ᵀ[...] computed by hand."""
    from eqexp.inference import firm_moments

    monkeypatch.setattr(firm_moments, "_BLOCK_ROWS", 16)
    small = FirmMoments.from_frame(panel, ["y", "m"], X, "firm", ["year"])
    assert_close_on_scale(small.cross, moments.cross, 1e-13)  # the same bits here; a BLAS may round other shapes otherwise
    years = np.sort(panel.year.unique())[:-1]
    for i in (0, 17, 123, 299):
        rows = panel[panel.firm == moments.firms[i]]
        z = np.column_stack([rows[X + ["y", "m"]].to_numpy(), (rows.year.to_numpy()[:, None] == years).astype(float)])
        z -= z.mean(axis=0)
        one_hot = np.eye(moments.n_firms)[i]
        np.testing.assert_allclose(small.aggregate(one_hot), z.T @ z, rtol=0, atol=1e-12)


def test_unit_weights_equal_pyfixest_for_each_outcome(panel, moments):
    beta = moments.coefficients(np.ones(moments.n_firms))
    assert beta.shape == (2, 3)
    np.testing.assert_allclose(beta[0], fixest(panel, "y"), rtol=0, atol=1e-8)
    np.testing.assert_allclose(beta[1], fixest(panel, "m"), rtol=0, atol=1e-8)


def test_bootstrap_weights_equal_pyfixest_on_duplicated_firms_with_new_ids(panel, moments):
    weights = bootstrap_weights(np.random.default_rng(7), moments.n_firms, 1)[0]
    copies = [
        panel[panel.firm == f].assign(firm=f"{f}_{k}")
        for f, w in zip(moments.firms, weights.astype(int))
        for k in range(w)
    ]
    resampled = pd.concat(copies, ignore_index=True)
    assert resampled.firm.nunique() == moments.n_firms  # G draws, duplicates are new firms
    beta = moments.coefficients(weights, y="y")[0]
    np.testing.assert_allclose(beta, fixest(resampled), rtol=0, atol=1e-8)


def test_group_mask_equals_separate_regression_with_group_specific_years(panel):
    # Odd firms never appear in 2013 and have a single 2012 row: their subsample lacks a
    # year level and has a singleton year, which pyfixest drops; the estimates still agree.
    odd = panel.firm % 2 == 1
    first_2012 = panel.index[odd & (panel.year == 2012)][0]
    data = panel[~(odd & (panel.year >= 2012)) | (panel.index == first_2012)]
    moments = FirmMoments.from_frame(data, "y", X, "firm")
    mask = (moments.firms % 2 == 1).astype(float)
    with pytest.warns(UserWarning, match="singleton"):
        separate = fixest(data[data.firm % 2 == 1])
    np.testing.assert_allclose(moments.coefficients(mask)[0], separate, rtol=0, atol=1e-8)


def test_batched_weights_equal_one_at_a_time(moments):
    weights = bootstrap_weights(np.random.default_rng(1), moments.n_firms, 4)
    batched = moments.coefficients(weights)
    assert batched.shape == (4, 2, 3)
    for w, beta in zip(weights, batched):
        np.testing.assert_allclose(beta, moments.coefficients(w), rtol=0, atol=1e-12)


def test_sums_over_sets_of_firms_equal_pyfixest_on_those_firms(panel, moments):
    """`sum_over` (the sparse product a permutation's small group takes) re-estimates each set's
    own regression, and equals the dense 0/1 weights."""
    rng = np.random.default_rng(5)
    members = np.stack([rng.choice(moments.n_firms, 40, replace=False) for _ in range(3)])
    summed = moments.sum_over(members)
    dense = np.zeros((3, moments.n_firms))
    np.put_along_axis(dense, members, 1.0, axis=1)
    np.testing.assert_allclose(summed, moments.aggregate(dense), rtol=1e-12, atol=1e-9)
    for row, chosen in zip(moments.solve(summed, "y"), members):
        np.testing.assert_allclose(row[0], fixest(panel[panel.firm.isin(moments.firms[chosen])]), rtol=0, atol=1e-8)


def test_sub_regression_with_other_columns(panel, moments):
    # y on [x, x2, z, m] and m on [x, x2, z] from the same stored moments.
    both = FirmMoments.from_frame(panel, "y", [*X, "m"], "firm")
    ones = np.ones(both.n_firms)
    np.testing.assert_allclose(both.coefficients(ones, "m", X)[0], fixest(panel, "m"), atol=1e-8)
    fit = pf.feols("y ~ x + x2 + z + m | firm + year", panel, demeaner=TIGHT)
    np.testing.assert_allclose(both.coefficients(ones)[0], fit.coef().to_numpy(), atol=1e-8)


def test_bootstrap_weights_resample_whole_firms_and_are_chunk_invariant():
    weights = bootstrap_weights(np.random.default_rng(3), 50, 6)
    assert np.all(weights.sum(axis=1) == 50)
    assert np.all(weights == np.round(weights)) and weights.min() == 0
    first = bootstrap_weights(np.random.default_rng(3), 50, 1)
    np.testing.assert_array_equal(first[0], weights[0])


def test_run_draws_concatenates_chunks_and_reports_progress(monkeypatch):
    monkeypatch.setattr("eqexp.inference.firm_moments.CHUNK_ENTRIES", 30)
    seen = []
    out = run_draws(lambda size: np.full((size, 1), size), 7, 10, lambda d, t: seen.append(d))
    assert out.ravel().tolist() == [3, 3, 3, 3, 3, 3, 1]
    assert seen == [3, 6, 7]


def test_missing_values_are_refused(panel):
    with pytest.raises(ValueError, match="missing values"):
        FirmMoments.from_frame(panel.assign(z=np.where(panel.x > 3, np.nan, panel.z)), "y", X, "firm")
