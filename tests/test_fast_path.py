"""The fast estimation path (absorbed blocks + least squares) equals `pf.feols` to 1e-10.

Every kind of model the fast path serves: one, two and three fixed effects (exact and
iterative absorption), clustered (one- and two-way), robust and iid errors, singletons and
missing values in the data, samples shared between models, and the stacked group model.
"""

import warnings

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest

from eqexp import absorb
from eqexp.cache import ProcessCache
from eqexp.estimate import BlockCache, Workspace, fit
from eqexp.spec import SpecError, VcovSpec
from numerics import assert_close_on_scale, assert_vcov_close, in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

DEMEANER = pf.MapDemeaner(fixef_tol=absorb.FIXEF_TOL)  # eqexp's tolerance where it iterates too
RTOL = 1e-10
VCOVS = {
    "firm": VcovSpec(),
    "province": VcovSpec(name="province", cluster=["province"], label="Province"),
    "twoway": VcovSpec(name="twoway", cluster=["firm_id", "year"], label="Firm and year"),
    "robust": VcovSpec(name="robust", type="hetero", cluster=[], label="Robust"),
    "iid": VcovSpec(name="iid", type="iid", cluster=[], label="IID"),
}


def make_panel(n_firms: int = 400, seed: int = 11) -> pd.DataFrame:
    """Unbalanced firm-year panel with gaps, singletons, missing values and firms that move province."""
    rng = np.random.default_rng(seed)
    rows = [(f, y) for f in range(n_firms) for y in range(2004, 2014) if rng.random() < 0.6]
    rows += [(n_firms + f, 2004 + f % 10) for f in range(12)]  # firms seen once: singletons
    df = pd.DataFrame(rows, columns=["firm_id", "year"])
    df["province"] = (df.firm_id % 9 + (rng.random(len(df)) < 0.05)).astype(int)  # a few firm-years elsewhere
    df["industry"] = (df.firm_id % 7).astype(str)
    alpha = rng.normal(size=n_firms + 12)[df.firm_id]
    df["market"] = 4 + 0.3 * rng.normal(size=len(df)) + 0.1 * alpha
    df["market_sq"] = df.market**2
    df["scale"] = rng.normal(10, 1, len(df)) + alpha
    df["age"] = rng.normal(2, 0.5, len(df))
    df["quality"] = 0.05 * df.market - 0.006 * df.market_sq + 0.02 * df.scale + alpha + 0.01 * (df.year - 2004) + rng.normal(0, 0.05, len(df))
    df.loc[rng.random(len(df)) < 0.03, "scale"] = np.nan
    df.loc[rng.random(len(df)) < 0.02, "quality"] = np.nan
    return in_test_order(df)


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return make_panel()


def reference(df: pd.DataFrame, y: str, x: list[str], fe: list[str], vcov: VcovSpec):
    """pf.feols on the same rows: NAs and singletons dropped by pyfixest itself."""
    spec = {vcov.type: "+".join(vcov.cluster)} if vcov.type.startswith("CRV") else vcov.type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyfixest warns about the singletons it drops
        return pf.feols(f"{y} ~ {' + '.join(x)} | {' + '.join(fe)}", df, vcov=spec, fixef_rm="singleton", demeaner=DEMEANER)


def assert_equal_to_pyfixest(ours, ref, x):
    tidy = ref.tidy()
    np.testing.assert_allclose(ours.tidy.estimate, tidy.Estimate[x], rtol=RTOL)
    np.testing.assert_allclose(ours.tidy.std_error, tidy["Std. Error"][x], rtol=RTOL)
    np.testing.assert_allclose(ours.tidy.statistic, tidy["t value"][x], rtol=RTOL)
    np.testing.assert_allclose(ours.tidy.p_value, tidy["Pr(>|t|)"][x], rtol=1e-8, atol=1e-14)
    # a bound near zero is a difference of two numbers: compare it on the scale of its SE
    np.testing.assert_allclose(ours.tidy.conf_low, tidy["2.5%"][x], rtol=RTOL, atol=RTOL * ours.tidy.std_error.max())
    assert_vcov_close(ours.vcov, ref._vcov, RTOL)
    assert ours.n_obs == ref._N and ours.df_t == ref._df_t
    np.testing.assert_allclose([ours.r2, ours.r2_within], [ref._r2, ref._r2_within], rtol=RTOL)


@pytest.mark.parametrize("vcov", VCOVS)
@pytest.mark.parametrize("fe", [["firm_id"], ["firm_id", "year"], ["year", "firm_id"], ["firm_id", "year", "industry"]])
def test_fast_path_equals_pyfixest(panel, fe, vcov):
    x = ["market", "market_sq", "scale", "age"]
    ours = fit(panel, "quality", x, fe, VCOVS[vcov])
    assert_equal_to_pyfixest(ours, reference(panel, "quality", x, fe, VCOVS[vcov]), x)
    assert ours.steps[0].dropped > 0 and ours.steps[1].dropped > 0  # missing values and singletons were there


def test_iterative_absorption_equals_pyfixest(panel, monkeypatch):
    """Two large effects (firm and province-year) go to pyfixest's alternating projections."""
    monkeypatch.setattr(absorb, "MAX_SMALL_LEVELS", 5)
    df = panel.assign(province_year=panel.province * 10_000 + panel.year)
    x = ["market", "scale"]
    sample = Workspace(df).sample(["quality", *x], ["firm_id", "province_year"])
    assert absorb.Absorber(list(sample.fe_codes.T)).exact is None  # the iterative engine, not the exact one
    ours = fit(df, "quality", x, ["firm_id", "province_year"], VCOVS["firm"])
    assert_equal_to_pyfixest(ours, reference(df, "quality", x, ["firm_id", "province_year"], VCOVS["firm"]), x)


def test_exact_and_iterative_absorption_agree(panel):
    rows = panel.dropna()
    codes = [absorb.factorize(rows[c].to_numpy()) for c in ("firm_id", "year", "industry")]
    exact = absorb.Absorber(codes)
    assert exact.exact is not None
    columns = rows[["quality", "market", "scale"]].to_numpy()
    iterative = exact._alternating_projections(columns)
    np.testing.assert_allclose(exact.demean(columns), iterative, atol=1e-11)
    # a column absorbed alone equals the same column absorbed in a block (BLAS may round a block's product otherwise)
    assert_close_on_scale(exact.demean(columns[:, [1]])[:, 0], exact.demean(columns)[:, 1], 1e-13)


def test_models_on_one_sample_share_absorbed_columns(panel):
    shared = ProcessCache()  # what a sweep worker keeps between its jobs
    cache = shared.blocks
    workspace = Workspace(panel, "test-data", shared)
    fit(panel, "quality", ["market", "age"], ["firm_id", "year"], VCOVS["firm"], workspace=workspace)
    stored = len(cache.columns)
    fit(panel, "quality", ["age", "market"], ["firm_id", "year"], VCOVS["robust"], workspace=workspace)
    assert len(cache.columns) == stored == 3  # same sample, same columns: nothing absorbed again
    later = Workspace(panel, "test-data", shared)  # a later job on the same prepared data
    fit(panel, "quality", ["market"], ["firm_id", "year"], VCOVS["iid"], workspace=later)
    assert len(cache.columns) == 3


def test_cache_keeps_within_its_byte_budget(panel):
    shared = ProcessCache()
    cache = shared.blocks = BlockCache(max_bytes=3 * 8 * len(panel))
    workspace = Workspace(panel, "budget", shared)
    fit(panel, "quality", ["market", "market_sq", "scale", "age"], ["firm_id", "year"], VCOVS["firm"], workspace=workspace)
    assert cache.bytes <= cache.max_bytes and len(cache.columns) <= 3


def test_query_selects_rows_like_a_subset(panel):
    workspace = Workspace(panel)
    x = ["market", "scale"]
    ours = fit(panel, "quality", x, ["firm_id", "year"], VCOVS["firm"], workspace=workspace, query="province < 4")
    assert_equal_to_pyfixest(ours, reference(panel.query("province < 4"), "quality", x, ["firm_id", "year"], VCOVS["firm"]), x)


def test_collinear_regressor_fails_with_its_name(panel):
    df = panel.assign(scale2=2 * panel.scale, firm_level=panel.firm_id % 5)
    with pytest.raises(SpecError, match="scale2 is collinear"):
        fit(df, "quality", ["market", "scale", "scale2"], ["firm_id", "year"], VCOVS["firm"])
    with pytest.raises(SpecError, match="firm_level is collinear"):  # absorbed by the firm effect
        fit(df, "quality", ["market", "firm_level"], ["firm_id", "year"], VCOVS["firm"])


def test_crv3_goes_to_pyfixest(panel):
    """What the fast path does not serve is estimated by pf.feols itself."""
    crv3 = VcovSpec(name="crv3", type="CRV3", cluster=["province"], label="Province (CRV3)")
    x = ["market", "scale"]
    ours = fit(panel, "quality", x, ["firm_id", "year"], crv3)
    assert_equal_to_pyfixest(ours, reference(panel, "quality", x, ["firm_id", "year"], crv3), x)


@pytest.mark.parametrize("group", ["ownership", "period"])  # constant within firm, and varying within firm
def test_stacked_groups_equal_the_interacted_pyfixest_model(panel, group):
    from eqexp.analyses.heterogeneity import group_design
    from eqexp.estimate import estimation_sample
    from eqexp.inference.groups import interacted_model, stack_groups

    df = panel.assign(ownership=np.where(panel.firm_id % 3 == 0, "soe", "private"), period=np.where(panel.year < 2009, "early", "late"))
    x, fe = ["market", "market_sq", "scale"], ["firm_id", "year"]
    workspace = Workspace(df)
    designs = [group_design(workspace, level, f"{group} == {level!r}", "quality", x, fe, "firm_id") for level in sorted(df[group].unique())]
    ours = stack_groups(designs, x, fe, "firm_id")
    data, _ = estimation_sample(df, ["quality", *x], fe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = interacted_model(data, "quality", x, group, "firm_id", ["year"], demeaner=DEMEANER)
    assert ours.groups == ref.groups and ours.n_obs == ref.n_obs and ours.n_clusters == ref.n_clusters
    np.testing.assert_allclose(ours.coef, ref.coef, rtol=RTOL)
    assert_vcov_close(ours.vcov, ref.vcov, RTOL)


@pytest.mark.parametrize("vcov", ["firm", "robust", "iid", "twoway"])
def test_model_without_fixed_effects_absorbs_its_intercept(panel, vcov):
    """No fixed effects: the constant is absorbed as a one-level effect, equal to pf.feols with an intercept."""
    x = ["market", "scale"]
    ours = fit(panel, "quality", x, [], VCOVS[vcov])
    spec = {"CRV1": "+".join(VCOVS[vcov].cluster)} if VCOVS[vcov].cluster else VCOVS[vcov].type
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = pf.feols(f"quality ~ {' + '.join(x)}", panel, vcov=spec)
    tidy = ref.tidy().loc[x]
    np.testing.assert_allclose(ours.tidy.estimate, tidy.Estimate, rtol=RTOL)
    np.testing.assert_allclose(ours.tidy.std_error, tidy["Std. Error"], rtol=RTOL)
    np.testing.assert_allclose(ours.tidy.p_value, tidy["Pr(>|t|)"], rtol=1e-8, atol=1e-14)
    assert_vcov_close(ours.vcov, ref._vcov[1:, 1:], RTOL)
    assert ours.n_obs == ref._N and ours.df_t == ref._df_t and ours.r2 == pytest.approx(ref._r2, rel=1e-12)
    assert np.isnan(ours.r2_within) and ours.fixed_effects == []
