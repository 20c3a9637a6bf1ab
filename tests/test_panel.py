"""Lags against a self-merge, trimming and winsorizing against hand-computed Stata percentiles.

Stata's `winsor2` is the reference for trimming and winsorizing, and no Stata is at hand: the worked
example of winsor2's help file is reproduced below; lags are checked against fixest's l() in
tests/test_fixest_reference.py."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eqexp.panel import add_lags, apply_trim, stata_percentile
from eqexp.spec import TrimSpec

STATA_DATA = Path(__file__).resolve().parent / "data" / "stata"


def test_gap_means_no_lag():
    df = pd.DataFrame({"firm_id": [1, 1, 1], "year": [2004, 2006, 2007], "x": [1.0, 2.0, 3.0]})
    out = add_lags(df, ["x"], 1)
    assert np.isnan(out.L1_x.iloc[1])  # 2006 has no 2005 observation
    assert out.L1_x.iloc[2] == 2.0
    assert add_lags(df, ["x"], 2).L2_x.tolist()[1] == 1.0


def test_lags_equal_self_merge(panel):
    for k in (1, 2, 3):
        out = add_lags(panel, ["market", "scale"], k)
        prior = panel[["firm_id", "year", "market"]].assign(year=panel.year + k)
        expected = panel.merge(prior, on=["firm_id", "year"], how="left", suffixes=("", "_lag")).market_lag
        np.testing.assert_array_equal(out[f"L{k}_market"].to_numpy(), expected.to_numpy())
        # never a shift: a firm's previous row is a different year wherever there is a gap
        shifted = panel.groupby("firm_id").market.shift(k)
        assert (out[f"L{k}_market"].isna() != shifted.isna()).any()


def test_stata_percentile_definition():
    # Stata _pctile (type 2): average the two order statistics when n·p is an integer
    x = pd.Series([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert stata_percentile(x, 50) == 5.5
    assert stata_percentile(x, 5) == 1.0  # n·p = 0.5 -> the 1st value
    assert stata_percentile(x, 10) == 1.5  # n·p = 1 -> mean of 1st and 2nd
    assert stata_percentile(x, 95) == 10.0


def test_trim_drops_outside_and_counts(panel):
    lo, hi = (np.percentile(panel.quality, q, method="averaged_inverted_cdf") for q in (5, 95))
    out, steps = apply_trim(panel, TrimSpec(method="trim", variables=["quality"], lower=5, upper=95))
    expected = panel[(panel.quality >= lo) & (panel.quality <= hi)]
    assert len(out) == len(expected) and steps[0].dropped == len(panel) - len(expected)


def test_winsor_caps_by_year():
    df = pd.DataFrame({"year": [1] * 10 + [2] * 10, "v": list(range(10)) + list(range(100, 110))})
    out, steps = apply_trim(df, TrimSpec(method="winsor", variables=["v"], lower=10, upper=90, by="year"))
    assert out.v.tolist()[:10] == [0.5, 1, 2, 3, 4, 5, 6, 7, 8, 8.5]
    assert out.v.tolist()[10:] == [100.5, 101, 102, 103, 104, 105, 106, 107, 108, 108.5]
    assert steps[0].dropped == 0 and steps[0].changed == 4


def test_winsor2_help_example_on_nlsw88_wages():
    """winsor2's help file (Lian Yujun, version 2.0 of 2020/11/24, on SSC as
    fmwww.bc.edu/RePEc/bocode/w/winsor2.sthlp): in Stata's nlsw88 data the 1st and 99th percentiles
    of wage are 1.930993 and 38.70926, and `winsor2 wage, replace cuts(1 99)` replaces the wages
    below and above them by them. Compared at the help file's printed precision."""
    wage = pd.read_csv(STATA_DATA / "nlsw88_wage.csv")
    low, high = stata_percentile(wage.wage, 1), stata_percentile(wage.wage, 99)
    assert low == pytest.approx(1.930993, abs=5e-7) and high == pytest.approx(38.70926, abs=5e-6)
    out, steps = apply_trim(wage, TrimSpec(method="winsor", variables=["wage"], lower=1, upper=99))
    inside = wage.wage.between(low, high)
    assert out.wage.min() == low and out.wage.max() == high
    assert out.wage[inside].equals(wage.wage[inside]) and steps[0].changed == (~inside).sum() > 0


def test_province_lags_ignore_firm_gaps():
    from eqexp.panel import add_province_lags, province_series

    df = pd.DataFrame({"firm_id": [1, 1, 2, 2], "year": [2004, 2006, 2005, 2006], "province": [11] * 4,
                       "market": [4.0, 4.2, 4.1, 4.2]})
    history = pd.DataFrame({"province": [11] * 4, "year": [2003, 2004, 2005, 2006], "market": [3.9, 4.0, 4.1, 4.2]})
    out = add_province_lags(df, "market", 1, province_series(df, "market", history))
    assert out.L1_market.tolist() == [3.9, 4.1, 4.0, 4.1]  # firm 1 in 2006 gets the province's 2005 value
    firm_level = add_lags(df, ["market"], 1)
    assert np.isnan(firm_level.L1_market.iloc[1])  # where the firm's own lag is missing
    from_panel = add_province_lags(df, "market", 1, province_series(df, "market"))
    assert np.isnan(from_panel.L1_market.iloc[0]) and from_panel.L1_market.iloc[1] == 4.1
