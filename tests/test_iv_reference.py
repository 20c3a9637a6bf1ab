"""2SLS and its diagnostics against R fixest's own IV output, stored with the script that made it.

`tests/data/fixest/make_iv_reference.R` (fixest 0.12.2) wrote the panel (an endogenous x, two
instruments, heteroskedastic errors) and, for one and two fixed effects × iid, HC1, CRV1 and
two-way vcov × just-identified, over-identified and quadratic (x and x² instrumented by z1
and z1²) models, plus a lagged model (`l(x, 1) ~ l(z1, 1) + l(z2, 1)`, two-way) and a subset
(year != 2010): fixest's 2SLS coefficients, SEs, covariance, first stages and
`fitstat(~ ivf + ivwald + wh + sargan)`. R is not needed here. The largest differences on these
cases: 2.3e-14 (estimates, relative), 2.7e-14 (SEs), 5e-15 (ivf, ivwald), 1.5e-14 (wh), 7.8e-13 (sargan).

Tolerance: 1e-9 relative (as the OLS reference, tests/test_fixest_reference.py: fixest demeans
iteratively to 3e-12, eqexp exactly). fixest's `kpr` (the Kleibergen–Paap statistic) stops with
an error on every clustered and every quadratic model, and with iid errors it is not the
Kleibergen–Paap statistic at all (30 where the first-stage F is 740): the file records its
errors, and eqexp's KP is held to hand formulas instead (tests/test_iv.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eqexp.estimate import fit
from eqexp.inference import iv_tests
from eqexp.spec import VcovSpec
from numerics import in_test_order

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)

REFERENCE = Path(__file__).resolve().parent / "data" / "fixest"
RTOL = 1e-9

MODELS = pd.read_csv(REFERENCE / "iv_models.csv").set_index("case")
COEFFICIENTS = pd.read_csv(REFERENCE / "iv_coefficients.csv")
VCOV = pd.read_csv(REFERENCE / "iv_vcov.csv")
FIRST = pd.read_csv(REFERENCE / "iv_first_stage.csv")
FITSTAT = pd.read_csv(REFERENCE / "iv_fitstat.csv", keep_default_na=False, na_values={"stat": [""], "p": [""], "df1": [""], "df2": [""]})

VCOVS = {
    "iid": VcovSpec(name="iid", type="iid", cluster=[], label="IID"),
    "hetero": VcovSpec(name="robust", type="hetero", cluster=[], label="Robust"),
    "firm": VcovSpec(),
    "firm_year": VcovSpec(name="firm_year", cluster=["firm_id", "year"], label="Firm and year"),
}
FIXED_EFFECTS = {"firm": ["firm_id"], "firm_year": ["firm_id", "year"]}
MODELS_IV = {"just": (["x"], ["z1"]), "over": (["x"], ["z1", "z2"]), "quadratic": (["x", "x_sq"], ["z1", "z1_sq"])}
CASES = [f"fe={fe};vcov={v};iv={iv}" for fe in FIXED_EFFECTS for v in VCOVS for iv in MODELS_IV]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    df = in_test_order(pd.read_csv(REFERENCE / "iv_panel.csv"))
    return df.assign(x_sq=df.x**2, z1_sq=df.z1**2)


def estimate(panel: pd.DataFrame, case: str):
    parts = dict(p.split("=") for p in case.split(";"))
    endogenous, instruments = MODELS_IV[parts["iv"]]
    return fit(panel, "y", [*endogenous, "scale", "age"], FIXED_EFFECTS[parts["fe"]], VCOVS[parts["vcov"]],
               endogenous=endogenous, instruments=instruments)


def close(ours, theirs, rtol=RTOL, scale=None):
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    scale = np.abs(theirs).max() if scale is None else scale
    assert np.abs(ours - theirs).max() <= rtol * scale, (ours, theirs)


@pytest.mark.parametrize("case", CASES)
def test_second_stage_equals_fixest(panel, case):
    result = estimate(panel, case)
    ref = COEFFICIENTS[COEFFICIENTS.case == case].set_index("term")
    tidy = result.tidy.set_index("term").loc[ref.index]
    for ours, theirs in (("estimate", "estimate"), ("std_error", "std_error"), ("statistic", "statistic")):
        close(tidy[ours], ref[theirs])
        for term in ref.index:  # each term on its own scale, not only the largest
            close(tidy.at[term, ours], ref.at[term, theirs], scale=abs(ref.at[term, theirs]))
    model = MODELS.loc[case]
    assert result.n_obs == model.n_obs and result.df_t == model.df_t
    v = VCOV[VCOV.case == case].pivot(index="row", columns="column", values="value").loc[list(ref.index), list(ref.index)]
    order = [result.regressors.index(t) for t in ref.index]
    close(result.vcov[np.ix_(order, order)], v.to_numpy())
    close(result.r2, model.r2)
    close(result.r2_within, model.r2_within)


@pytest.mark.parametrize("case", CASES)
def test_first_stages_equal_fixest(panel, case):
    result = estimate(panel, case)
    for stage, name in zip(result.iv.first, result.iv.endogenous_names):
        ref = FIRST[(FIRST.case == case) & (FIRST.endogenous == name)].set_index("term")
        ours = pd.Series(stage.coef, index=list(stage.names)).loc[ref.index]
        close(ours, ref.estimate)
        close(pd.Series(stage.se, index=list(stage.names)).loc[ref.index], ref.std_error)


def fitstat(case: str, name: str) -> pd.Series:
    return FITSTAT[(FITSTAT.case == case) & (FITSTAT.statistic == name)].iloc[0]


@pytest.mark.parametrize("case", CASES)
def test_diagnostics_equal_fixest_fitstat(panel, case):
    """first_stage_f = ivf, kp_wald_f (one endogenous regressor) = ivwald, endogeneity's Wu–Hausman = wh, sargan = sargan."""
    result = estimate(panel, case)
    part = iv_tests.partial_out(result.iv)
    for test, name in zip(iv_tests.first_stage_f(part), result.iv.endogenous_names):
        ref = fitstat(case, f"ivf1::{name}")
        close(test.statistic, ref.stat)
        assert (test.df, test.df_denom) == (ref.df1, ref.df2)
        close(test.p_value, ref.p, scale=max(ref.p, 1e-300))
    if part.p == 1:
        kp, ref = iv_tests.kp_wald_f(part), fitstat(case, "ivwald1::x")
        close(kp.statistic, ref.stat)
        assert (kp.df, kp.df_denom) == (ref.df1, ref.df2)
    wu = iv_tests.endogeneity(part)[0]
    ref = fitstat(case, "wh")
    close(wu.statistic, ref.stat)
    assert (wu.df, wu.df_denom) == (ref.df1, ref.df2)
    over = iv_tests.overidentification(part)
    if case.endswith("iv=over") and case.split(";")[1] == "vcov=iid":
        ref = fitstat(case, "sargan")
        close(over.statistic, ref.stat)
        close(over.p_value, ref.p)


def lagged_or_subset(panel: pd.DataFrame, case: str):
    """fixest's `l(x, 1) ~ l(z1, 1) + l(z2, 1)` on panel.id (eqexp: gap-aware lags on the full panel), two-way
    clustered; and `subset = year != 2010` (eqexp: the query)."""
    from eqexp.panel import add_lags

    if case.startswith("lag1"):
        lagged = add_lags(panel, ["x", "z1", "z2"], 1, "firm_id", "year")
        return fit(lagged, "y", ["L1_x", "scale", "age"], ["firm_id", "year"], VCOVS["firm_year"], endogenous=["L1_x"],
                   instruments=["L1_z1", "L1_z2"]), "l(x, 1)"
    return fit(panel, "y", ["x", "scale", "age"], ["firm_id", "year"], VCOVS["firm"], query="year != 2010", endogenous=["x"],
               instruments=["z1", "z2"]), "x"


@pytest.mark.parametrize("case", ["lag1;vcov=firm_year", "year!=2010;vcov=firm"])
def test_lags_and_subsets_equal_fixest(panel, case):
    result, fixest_name = lagged_or_subset(panel, case)
    ref = COEFFICIENTS[COEFFICIENTS.case == case].set_index("term")
    tidy = result.tidy.set_index("term").loc[ref.index]
    for column in ("estimate", "std_error", "statistic"):
        close(tidy[column], ref[column])
    assert result.n_obs == MODELS.loc[case].n_obs and result.df_t == MODELS.loc[case].df_t
    (stage,) = result.iv.first
    first = FIRST[FIRST.case == case].set_index("term")
    close(pd.Series(stage.coef, index=list(stage.names)).loc[first.index], first.estimate)
    part = iv_tests.partial_out(result.iv)
    close(iv_tests.first_stage_f(part)[0].statistic, fitstat(case, f"ivf1::{fixest_name}").stat)
    close(iv_tests.kp_wald_f(part).statistic, fitstat(case, f"ivwald1::{fixest_name}").stat)
    close(iv_tests.endogeneity(part)[0].statistic, fitstat(case, "wh").stat)
