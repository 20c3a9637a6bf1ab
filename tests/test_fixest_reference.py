"""eqexp against R fixest's own output on a small panel, stored with the script that made it.

`tests/data/fixest/make_reference.R` (fixest 0.12.2, its header says how to re-run it) wrote the
panel and every reference number here; these tests only read them, R is not needed.

Tolerance: 1e-9 relative for estimates, SEs, t, the covariance and R². fixest demeans
iteratively to fixef.tol = 3e-12 (the least it accepts), eqexp exactly (within the firm, the
small effects' dummies partialled out); the worst differences on the stored cases are 2e-12
(estimates), 1e-11 (SEs) and 2e-11 (covariance, relative to its largest entry), about what an
explicit-dummy least-squares solution differs from either. 1e-9 leaves room for other BLAS.
p-values also get an absolute 1e-15: eqexp writes p = 2(1 - F(|t|)) as pyfixest does, fixest
2F(-|t|), and below 1e-8 the first keeps only an absolute precision of about 1e-16.

Where eqexp and fixest differ by design, the test says so: singletons (eqexp removes them until
none is left, fixest in one round), collinear regressors (fixest drops them, eqexp refuses the
model and names them), and fixest's `split =`, which ignores fixef.tol.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from eqexp.analyses.inverted_u import inverted_u
from eqexp.estimate import Fit, fit
from eqexp.inference import hypothesis
from eqexp.panel import add_lags
from eqexp.runner import run_job
from eqexp.spec import SpecError, VcovSpec
from eqexp.terms import lag_name, square_name
from numerics import assert_vcov_close, in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "fixest"
RTOL = 1e-9
P_ATOL = 1e-15

MODELS = pd.read_csv(REFERENCE / "models.csv").set_index("case")
COEFFICIENTS = pd.read_csv(REFERENCE / "coefficients.csv")
VCOV = pd.read_csv(REFERENCE / "vcov.csv")
UTEST = pd.read_csv(REFERENCE / "utest.csv").set_index("case")

VCOVS = {  # make_reference.R's names
    "iid": VcovSpec(name="iid", type="iid", cluster=[], label="IID"),
    "hetero": VcovSpec(name="robust", type="hetero", cluster=[], label="Robust"),
    "firm": VcovSpec(),
    "province": VcovSpec(name="province", cluster=["province"], label="Province"),
    "firm_year": VcovSpec(name="firm_year", cluster=["firm_id", "year"], label="Firm and year"),
    "firm_province_year": VcovSpec(name="firm_province_year", cluster=["firm_id", "province_year"], label="Firm and province-year"),
}
FIXED_EFFECTS = {"firm": ["firm_id"], "firm_year": ["firm_id", "year"]}
REGIONS = ["Central", "East", "West"]


def regressors(k: int = 0, controls: bool = True) -> list[str]:
    x = lag_name("market", k)
    return [x, square_name(x), *(["scale", "age"] if controls else [])]


@dataclass(frozen=True)
class Case:
    regressors: list[str]
    fixed_effects: list[str]
    vcov: str = "firm"
    query: str | None = None


CASES = {
    **{f"fe={fe};vcov={v}": Case(regressors(), FIXED_EFFECTS[fe], v) for fe in FIXED_EFFECTS for v in VCOVS},
    "no_controls": Case(regressors(controls=False), FIXED_EFFECTS["firm_year"]),
    "lag1": Case(regressors(1), FIXED_EFFECTS["firm_year"]),
    "lag2": Case(regressors(2), FIXED_EFFECTS["firm_year"]),
    **{f"region={r}": Case(regressors(), FIXED_EFFECTS["firm_year"], query=f"region == '{r}'") for r in REGIONS},
    **{f"lag1;region={r}": Case(regressors(1), FIXED_EFFECTS["firm_year"], query=f"region == '{r}'") for r in REGIONS},
    "year!=2010": Case(regressors(), FIXED_EFFECTS["firm_year"], query="year != 2010"),
    "singletons=iterated": Case(["market", "scale"], ["firm_id", "province_year"]),
}


def read_panel() -> pd.DataFrame:
    return in_test_order(pd.read_csv(REFERENCE / "panel.csv"))


@pytest.fixture(scope="module")
def reference_panel() -> pd.DataFrame:
    """The stored panel with eqexp's own gap-aware lags and squares (fixest's province^year as a column)."""
    df = add_lags(add_lags(read_panel(), ["market"], 1), ["market"], 2)
    for x in ("market", lag_name("market", 1), lag_name("market", 2)):
        df[square_name(x)] = df[x] ** 2
    return df.assign(province_year=df.province * 10_000 + df.year)


def fit_case(df: pd.DataFrame, case: str) -> Fit:
    c = CASES[case]
    return fit(df, "quality", c.regressors, c.fixed_effects, VCOVS[c.vcov], query=c.query)


def reference(case: str) -> pd.DataFrame:
    return COEFFICIENTS[COEFFICIENTS.case == case].set_index("term")


def reference_vcov(case: str, terms: list[str]) -> np.ndarray:
    return VCOV[VCOV.case == case].pivot(index="row", columns="column", values="value").loc[terms, terms].to_numpy()


def assert_equal_to_fixest(ours: Fit, case: str) -> None:
    ref, model, tidy = reference(case), MODELS.loc[case], ours.tidy.set_index("term")
    assert list(tidy.index) == list(ref.index)
    for column in ("estimate", "std_error", "statistic"):
        np.testing.assert_allclose(tidy[column], ref[column], rtol=RTOL, err_msg=column)
    np.testing.assert_allclose(tidy.p_value, ref.p_value, rtol=RTOL, atol=P_ATOL)
    vcov = reference_vcov(case, ours.regressors)
    assert_vcov_close(ours.vcov, vcov, RTOL)
    assert (ours.n_obs, ours.df_t) == (model.n_obs, model.df_t)
    np.testing.assert_allclose([ours.r2, ours.r2_within], [model.r2, model.r2_within], rtol=RTOL)
    assert ours.ranges[ours.regressors[0]] == (model.x_min, model.x_max)  # utest's interval


def assert_utest_equal(ours: pd.DataFrame, case: str) -> None:
    """eqexp's utest rows of tests.csv (one model's) against the authors' R utest."""
    ref, rows = UTEST.loc[case], ours.set_index("hypothesis")
    low, high, slm = rows.loc["slope_at_x_low"], rows.loc["slope_at_x_high"], rows.loc["lind_mehlum"]
    number = {"x_low": low.point, "x_high": high.point, "slope_low": low.estimate, "slope_high": high.estimate, "t_low": low.statistic,
              "t_high": high.statistic, "p_low": low.p_value, "p_high": high.p_value, "t_slm": slm.statistic, "p_value": slm.p_value}
    number = {key: float(value) for key, value in number.items()}
    assert (number["x_low"], number["x_high"]) == (ref.x_min, ref.x_max)
    slopes = ["slope_low", "slope_high", "t_low", "t_high"]
    np.testing.assert_allclose([number[k] for k in slopes], ref[slopes].astype(float), rtol=RTOL)
    assert str("trivial failure" in slm.verdict) == str(ref.trivial_failure)
    if ref.method == "Test of inverted U shape" and not ref.trivial_failure:
        np.testing.assert_allclose([number["p_low"], number["p_high"], number["t_slm"], number["p_value"]],
                                   [ref.p_low, ref.p_high, ref.t, ref.p_value], rtol=RTOL)
    else:  # R's utest turns to a test of a U shape; eqexp's tests only an inverted U, and rejects none here
        assert str(rows.reject["inverted_u"]) == "False"


# --- estimates through eqexp.estimate.fit -----------------------------------------------------------------


def test_gap_aware_lags_equal_fixest_l_on_the_declared_panel():
    ours = add_lags(add_lags(read_panel(), ["market"], 1), ["market"], 2).sort_values(["firm_id", "year"], ignore_index=True)
    fixest = pd.read_csv(REFERENCE / "lags.csv")  # the stored panel's order: by firm and year
    assert ours[["firm_id", "year"]].equals(fixest[["firm_id", "year"]])
    np.testing.assert_array_equal(ours[["L1_market", "L2_market"]], fixest[["L1_market", "L2_market"]])  # NaN where a year is missing
    assert ours.L1_market.isna().sum() > ours.groupby("firm_id").ngroups  # gaps inside firms, not only first years


@pytest.mark.parametrize("vcov", VCOVS)
@pytest.mark.parametrize("fe", FIXED_EFFECTS)
def test_one_and_two_fixed_effects_iid_hetero_and_clustered_one_and_two_way_equal_fixest(reference_panel, fe, vcov):
    assert_equal_to_fixest(fit_case(reference_panel, f"fe={fe};vcov={vcov}"), f"fe={fe};vcov={vcov}")


def test_treatment_and_square_without_controls_equals_fixest(reference_panel):
    assert_equal_to_fixest(fit_case(reference_panel, "no_controls"), "no_controls")


@pytest.mark.parametrize("case", ["lag1", "lag2"])
def test_gap_aware_lags_in_the_model_equal_fixest_l_with_panel_id(reference_panel, case):
    assert_equal_to_fixest(fit_case(reference_panel, case), case)


@pytest.mark.parametrize("case", [*(f"region={r}" for r in REGIONS), *(f"lag1;region={r}" for r in REGIONS), "year!=2010"])
def test_group_and_sample_queries_equal_fixest_subset_with_lags_built_before_the_split(reference_panel, case):
    assert_equal_to_fixest(fit_case(reference_panel, case), case)


@pytest.mark.parametrize("region", REGIONS)
def test_fixest_split_gives_the_same_estimates_but_its_ses_only_to_1e6(reference_panel, region):
    """fixest 0.12.2 does not pass fixef.tol on to `split =` samples (they equal the estimates at
    its default 1e-6): coefficients still agree to 1e-9, their SEs to 6e-8, against 1e-9 with `subset =`."""
    ours = fit_case(reference_panel, f"region={region}").tidy.set_index("term")
    split = reference(f"split;region={region}")
    np.testing.assert_allclose(ours.estimate, split.estimate, rtol=RTOL)
    np.testing.assert_allclose(ours.std_error, split.std_error, rtol=1e-6)


def test_singletons_removed_until_none_is_left_as_fixest_rerun_on_its_kept_rows(reference_panel):
    """fixest removes singletons in one round: it keeps a row that became alone after the first
    round. eqexp drops it too, so it equals fixest re-run until nothing changes; against fixest's
    own one round the estimates are equal (a singleton moves none), N is one lower and the SEs
    differ only by the small-sample factor G/(G-1)·(N-1)/(N-K)."""
    ours = fit_case(reference_panel, "singletons=iterated")
    assert_equal_to_fixest(ours, "singletons=iterated")
    one_round, iterated = MODELS.loc["singletons=one_round"], MODELS.loc["singletons=iterated"]
    assert one_round.n_obs == ours.n_obs + 1
    ref = reference("singletons=one_round")
    np.testing.assert_allclose(ours.tidy.estimate, ref.estimate, rtol=RTOL)

    def factor(m: pd.Series) -> float:
        return m.n_clusters / (m.n_clusters - 1) * (m.n_obs - 1) / (m.n_obs - m.dof_k)

    np.testing.assert_allclose(ours.tidy.std_error.to_numpy() / ref.std_error.to_numpy(),
                               np.sqrt(factor(iterated) / factor(one_round)), rtol=RTOL)


@pytest.mark.parametrize(("case", "with_it"), [("collinear=scale2", ["market", "scale", "scale2", "age"]),
                                                ("collinear=soe", ["market", "soe", "scale", "age"])])
def test_collinear_regressor_that_fixest_drops_is_refused_by_name_and_the_rest_equals_fixest(reference_panel, case, with_it):
    dropped = MODELS.loc[case].collinear
    df = reference_panel.assign(scale2=2 * reference_panel.scale)
    with pytest.raises(SpecError, match=f"{dropped} is collinear"):
        fit(df, "quality", with_it, FIXED_EFFECTS["firm_year"], VCOVS["firm"])
    without = fit(df, "quality", [r for r in with_it if r != dropped], FIXED_EFFECTS["firm_year"], VCOVS["firm"])
    assert_equal_to_fixest(without, case)


@pytest.mark.parametrize("case", list(UTEST.index))
def test_lind_mehlum_on_eqexp_fit_equals_the_authors_r_utest_on_fixest(reference_panel, case):
    """Stata's `utest` is the reference and no Stata is at hand: its authors' R port (Lind and
    Mehlum, jotlind/utest) on fixest's estimates and 2x2 vcov stands in for it."""
    _, vcov, test = inverted_u(fit_case(reference_panel, case))
    terms = CASES[case].regressors[:2]
    assert_vcov_close(vcov, reference_vcov(case, terms), RTOL)
    assert_utest_equal(hypothesis.frame((case, t) for t in test.tests()), case)


# --- the whole job ---------------------------------------------------------------------------------------

JOBS = {  # overrides: {table column: fixest case}
    "baseline": ([], {"(1)": "no_controls", "(2)": "fe=firm_year;vcov=firm"}),
    "province": (["vcov=province"], {"(2)": "fe=firm_year;vcov=province"}),
    "lags": (["lags=l1"], {"(2)": "lag1"}),
    "drop2010": (["sample=drop2010"], {"(2)": "year!=2010"}),
    "regions": (["hetero=region"], {"(1)": "region=East", "(2)": "region=West", "(3)": "region=Central"}),
    "lagged_regions": (["hetero=region", "lags=l1"], {"(1)": "lag1;region=East", "(2)": "lag1;region=West", "(3)": "lag1;region=Central"}),
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("job", JOBS)
def test_whole_job_on_the_panel_file_equals_fixest_with_its_inverted_u_test(tmp_path, cache, job):
    overrides, columns = JOBS[job]
    data = ["data=example", f"data.path={REFERENCE / 'panel.csv'}", "~data.columns", "data.schema=null",
            "data.name=fixest_reference", f"data.cache_dir={cache}"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["tracking=off", *data, "model.controls=[scale,age]", *overrides])
    run_job(cfg, tmp_path)
    coefficients = pd.read_csv(tmp_path / "coefficients.csv")
    tests = hypothesis.read(tmp_path / "tests.csv")
    for column, case in columns.items():
        ours, ref, model = coefficients[coefficients.model == column].set_index("term"), reference(case), MODELS.loc[case]
        assert list(ours.index) == list(ref.index)
        for stat in ("estimate", "std_error", "statistic"):
            np.testing.assert_allclose(ours[stat], ref[stat], rtol=RTOL, err_msg=f"{column} {stat}")
        np.testing.assert_allclose(ours.p_value, ref.p_value, rtol=RTOL, atol=P_ATOL)
        assert (ours.n_obs == model.n_obs).all()
        np.testing.assert_allclose(ours[["r2", "r2_within"]].iloc[0], [model.r2, model.r2_within], rtol=RTOL)
        utest = tests[(tests.model == column) & (tests.test == "utest")]
        assert_utest_equal(utest, case)
