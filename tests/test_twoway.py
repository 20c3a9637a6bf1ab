"""Two-way clustering (Cameron, Gelbach & Miller 2011) with fixest's small-sample conventions,
against the formula computed by hand with explicit dummies, and against pf.feols."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from hydra import compose, initialize_config_dir

from eqexp.estimate import fit
from eqexp.spec import VcovSpec, load_spec

from conftest import make_panel
from numerics import assert_vcov_close
from test_experiments import ROOT

pytestmark = pytest.mark.numerics  # also run with the rows shuffled (numerics.py)


def by_hand(df: pd.DataFrame, regressors: list[str], first: str, second: str, k: int) -> np.ndarray:
    """quality ~ regressors + firm and year dummies; V = c·B(M₁ + M₂ − M₁₂)B with
    c = G/(G − 1)·(N − 1)/(N − k), G the smaller number of clusters of the two dimensions, and
    k the parameters fixest counts (a fixed effect whose every level lies in one cluster costs
    one parameter, not its number of levels)."""
    firms = pd.get_dummies(df.firm_id).to_numpy(float)
    years = pd.get_dummies(df.year).to_numpy(float)[:, 1:]
    z = np.column_stack([df[regressors].to_numpy(float), firms, years])
    bread = np.linalg.inv(z.T @ z)
    resid = df.quality.to_numpy() - z @ (bread @ (z.T @ df.quality.to_numpy()))
    scores = z * resid[:, None]

    def meat(groups: pd.Series) -> np.ndarray:
        sums = pd.DataFrame(scores).groupby(groups.to_numpy()).sum().to_numpy()
        return sums.T @ sums

    one, two = df[first].astype(str), df[second].astype(str)
    both = one + "|" + two
    g = min(one.nunique(), two.nunique())
    n = len(df)
    c = g / (g - 1) * (n - 1) / (n - k)
    v = c * bread @ (meat(one) + meat(two) - meat(both)) @ bread
    return v[: len(regressors), : len(regressors)]


@pytest.mark.parametrize("second, fe_parameters", [
    ("year", 1),  # firm in firm clusters, year in year clusters: both nested, the two effects cost 2 - 1
    ("province^year", 10),  # a year spans many province-years: not nested, its 10 levels count (the firm's 1 - 1 more)
])
def test_two_way_clustered_se_equals_the_formula_by_hand_and_pf_feols(second, fe_parameters):
    df = make_panel(n_firms=150)
    df = df[df.groupby("firm_id").year.transform("size") > 1].reset_index(drop=True)  # no singletons: the same rows everywhere
    df["market_sq"] = df.market**2
    regressors = ["market", "market_sq", "scale"]
    f = fit(df, "quality", regressors, ["firm_id", "year"], VcovSpec("twoway", "CRV1", ["firm_id", second], ""))
    explicit = df.assign(province_year=df.province.astype(str) + "-" + df.year.astype(str))  # pyfixest has no a^b clusters
    column = "province_year" if "^" in second else second
    assert_vcov_close(f.vcov, by_hand(explicit, regressors, "firm_id", column, len(regressors) + fe_parameters), 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = pf.feols("quality ~ market + market_sq + scale | firm_id + year", explicit, vcov={"CRV1": f"firm_id+{column}"},
                             demeaner=pf.MapDemeaner(fixef_tol=1e-13))
    np.testing.assert_allclose(f.tidy["std_error"], reference.se().to_numpy(), rtol=1e-9)
    assert f.df_t == min(df.firm_id.nunique(), explicit[column].nunique()) - 1


def test_twoway_preset_clusters_by_the_unit_and_the_period_and_names_both():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        spec = load_spec(compose("config", overrides=["vcov=twoway"]))
        chosen = load_spec(compose("config", overrides=["vcov=twoway", 'vcov.cluster=[firm_id,"province^year"]']))
    assert spec.vcov.cluster == ["firm_id", "year"] and spec.vcov.label == "Firm and Year"
    assert chosen.vcov.cluster == ["firm_id", "province^year"] and chosen.vcov.label == "Firm and Province × Year"


def test_crossed_cluster_on_the_pyfixest_path_equals_an_explicit_column():
    """CRV3 goes to pf.feols, which reads clusters as columns: `province^year` is made into one."""
    df = make_panel(n_firms=150)
    explicit = df.assign(province_year=df.province.astype(str) + "-" + df.year.astype(str))
    crossed = fit(df, "quality", ["market", "scale"], ["firm_id"], VcovSpec("py", "CRV3", ["province^year"], ""))
    named = fit(explicit, "quality", ["market", "scale"], ["firm_id"], VcovSpec("py", "CRV3", ["province_year"], ""))
    np.testing.assert_allclose(crossed.tidy["std_error"], named.tidy["std_error"], rtol=1e-12)
    assert crossed.n_obs == named.n_obs and crossed.df_t == named.df_t
