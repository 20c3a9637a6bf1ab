import math

import numpy as np
import pandas as pd
import pytest

from eqexp.data.validate import DataValidationError
from eqexp.measures import classify as C
from eqexp.measures import controls as K
from eqexp.measures import mediators as M


def accounts() -> pd.DataFrame:
    """Three firms in thousand RMB; firm 3 changes ownership and has bad founding years."""
    return pd.DataFrame({
        "firm_id": [1, 1, 2, 3, 3, 3],
        "year": [2004, 2005, 2004, 2004, 2005, 2006],
        "total_assets": [50_000.0, 60_000, 8_000_000, 20_000, 22_000, 25_000],
        "liabilities": [25_000.0, 30_000, 2_000_000, 15_000, 11_000, 10_000],
        "profit": [5_000.0, -600, 400_000, 1_000, 1_100, 1_250],
        "inventory": [10_000.0, 12_000, 800_000, 0, 2_200, 5_000],
        "employment": [120, 130, 3000, 40, 45, 50],
        "founding_year": [1995, 1995, 1950, 1948, 2006, 2001],
        "registration_type": ["110", "110", "173", 151, 173, None],
        "province": [110000, 110000, 440300, 54, 54, 54],
        "city": [1101, 1101, 4403, 5401, 5401, 5401],
        "industry": ["1711", "1711", "4011", 2710, 2710, 2710],
    })


def test_controls_by_hand():
    log = []
    out = K.firm_controls(accounts(), log=log)
    assert [(e["step"], e["dropped"]) for e in log] == [("assets_nonpositive", 0), ("founding_year", 2)]
    first = out.iloc[0]
    assert first["scale"] == pytest.approx(math.log(50_000))
    assert first["age"] == pytest.approx(math.log(2004 - 1995 + 1))
    assert (first["roa"], first["rdebt"], first["invint"]) == pytest.approx((0.1, 0.5, 0.2))
    s = math.log(50)  # RMB 50 million
    assert first["sa"] == pytest.approx(-0.737 * s + 0.043 * s**2 - 0.040 * 9)
    assert first["fic"] == pytest.approx(math.log(abs(first["sa"])))
    big = out[out["firm_id"] == 2].iloc[0]  # RMB 8 bn > cap, 54 years > 37
    cap = math.log(4500)
    assert big["sa"] == pytest.approx(-0.737 * cap + 0.043 * cap**2 - 0.040 * 37)


def test_invalid_founding_and_assets_dropped_and_logged():
    df = accounts()
    df.loc[1, "total_assets"] = 0.0
    df.loc[0, "founding_year"] = np.nan
    log = []
    out = K.firm_controls(df, log=log)
    assert [(e["step"], e["dropped"]) for e in log] == [("assets_nonpositive", 1), ("founding_year", 3)]
    assert out.index.tolist() == [2, 5]  # 1948 and 2006 > 2005 go, as do the missing and the zero


def test_sa_falls_with_size_in_rmb_million_and_flips_in_thousand():
    assets = pd.Series(np.geomspace(5_000, 4_000_000, 50))  # thousand RMB: RMB 5 million to 4 billion
    age = pd.Series(10.0, index=assets.index)
    right = K.sa_index(assets, age)
    assert (np.diff(right) < 0).all()
    wrong = K.sa_index(assets, age, assets_to_million=1, size_cap=None)  # thousand RMB read as million
    assert (np.diff(wrong) > 0).all()
    # the cap would hide the error (SA constant in size), so firm_controls refuses such units
    with pytest.raises(DataValidationError, match="thousand RMB"):
        K.firm_controls(accounts(), assets_to_million=1)


def test_sa_caps():
    assets, age = pd.Series([1e9, 1e9]), pd.Series([37.0, 60.0])
    a, b = K.sa_index(assets, age)
    assert a == b
    assert K.sa_index(pd.Series([1e9]), pd.Series([5.0]), size_cap=None)[0] != K.sa_index(pd.Series([1e9]), pd.Series([5.0]))[0]


def test_alternative_size_and_inventory_base():
    df = accounts().assign(sales=100_000.0)
    out = K.firm_controls(df, size="employment", inventory_base="sales")
    assert out["scale"].iloc[0] == pytest.approx(math.log(120)) and out["invint"].iloc[0] == pytest.approx(0.1)


def test_clean_accounts_rules():
    df = pd.DataFrame({"total_assets": [100.0, 100, 100, 100, 100], "employment": [10, 5, 10, 10, 10],
                       "current_assets": [50.0, 50, 150, 50, 50], "net_fixed_assets": [40.0, 40, 40, 0, 40],
                       "accumulated_depreciation": [10.0, 10, 10, 10, 1], "current_depreciation": [2.0, 2, 2, 2, 2]})
    log = []
    out = K.clean_accounts(df, log=log)
    assert out.index.tolist() == [0]
    assert {e["step"]: e["dropped"] for e in log} == {"net_fixed_assets_nonpositive": 1, "small_employment": 1,
                                                       "assets_below_current_assets": 1, "assets_below_net_fixed_assets": 0,
                                                       "depreciation": 1}


def test_build_controls_validates_and_logs():
    out, log = K.build_controls(accounts())
    assert len(out) == 4 and log[-1]["step"] == "founding_year"
    with pytest.raises(DataValidationError, match="duplicated key"):
        K.build_controls(pd.concat([accounts(), accounts().iloc[:1]]))


# --------------------------------------------------------------------------- mediators


def education() -> pd.DataFrame:
    return pd.DataFrame({"province": [11, 44], "year": [2004, 2004], "no_school": [1.0, 3], "primary": [10.0, 20],
                         "junior_high": [30.0, 45], "secondary_vocational": [5.0, 0], "high_school": [25.0, 20],
                         "higher_vocational": [3.0, 0], "college": [12.0, 7], "undergraduate": [12.0, 4.5],
                         "graduate": [2.0, 0.5]})


def test_human_capital_weights():
    out = M.human_capital(education(), transform="level")
    h11 = (0 * 1 + 6 * 10 + 9 * 30 + 12 * 5 + 12 * 25 + 15 * 3 + 15 * 12 + 16 * 12 + 19 * 2) / 100
    assert out["education_years"].tolist() == pytest.approx([h11, 9.515])
    assert out["humancapital"].tolist() == pytest.approx(out["education_years"].tolist())
    logged = M.human_capital(education())
    assert logged["humancapital"].tolist() == pytest.approx(np.log(out["education_years"]).tolist())
    # the study's Table 2 median 2.234 is ln of 9.34 years
    assert math.exp(2.234) == pytest.approx(9.34, abs=0.01)


def test_human_capital_without_vocational_columns_and_share_checks():
    old = education().drop(columns=["secondary_vocational", "higher_vocational"])
    old.loc[0, "high_school"] = 33.0
    assert M.human_capital(old, "level")["education_years"].iloc[1] == pytest.approx(9.515)
    frac = education().assign(**{c: education()[c] / 100 for c in M.EDUCATION_YEARS})
    with pytest.raises(DataValidationError, match="multiply by 100"):
        M.human_capital(frac)


def test_rd_intensity_transforms_and_units():
    rd = pd.DataFrame({"industry": ["1711", "1712", 39], "year": 2004, "rd_expenditure": [100.0, 50, 3_000_000],
                       "output": [20_000.0, 30_000, 300_000_000]})
    pct = M.rd_intensity(rd)
    assert pct.values.tolist() == [[17, 2004, pytest.approx(0.3)], [39, 2004, pytest.approx(1.0)]]
    assert M.rd_intensity(rd, "permille")["rd"].tolist() == pytest.approx([3.0, 10.0])
    assert M.rd_intensity(rd, "ln_expenditure")["rd"].tolist() == pytest.approx([math.log(0.015), math.log(300)])
    with pytest.raises(DataValidationError, match="same unit"):
        M.rd_intensity(rd.assign(output=rd["output"] / 1e4))  # output in 亿元, R&D in 万元


# --------------------------------------------------------------------------- classifications


def test_soe_initial_and_current():
    df = accounts()
    assert C.soe(df, "current").tolist() == [1, 1, 0, 1, 0, pd.NA]
    assert C.soe(df).tolist() == [1, 1, 0, 1, 1, 1]  # firm 3 was an SOE (151) in its first year
    df.loc[3, "registration_type"] = None  # unknown first year: the first known type decides
    assert C.soe(df.iloc[::-1]).tolist()[::-1] == [1, 1, 0, 0, 0, 0]


def test_regions_and_codes():
    prov = pd.Series([110000, 21, "340100", 54, 46, None])
    assert C.province_code(prov).tolist() == [11, 21, 34, 54, 46, pd.NA]
    assert C.region(prov).tolist() == ["East", "East", "Central", "West", "East", pd.NA]
    assert C.region(prov, "four_region").tolist() == ["East", "Northeast", "Central", "West", "East", pd.NA]
    four = C.region(pd.Series([11, 21, 22, 23, 14, 34]), "four_region").tolist()
    assert four == ["East", "Northeast", "Northeast", "Northeast", "Central", "Central"]


def test_factor_intensity():
    ind = pd.Series(["1711", 2710, "3911", "2511", "4310", "0610"])
    assert C.factor_intensity(ind).tolist() == ["labour", "technology", "technology", "capital", pd.NA, pd.NA]
    assert C.factor_intensity(ind, "two_way").tolist() == ["labour", "capital", "capital", "capital", pd.NA, pd.NA]
    assert not set(C.LABOUR) & set(C.CAPITAL) | set(C.LABOUR) & set(C.TECHNOLOGY) | set(C.CAPITAL) & set(C.TECHNOLOGY)


def test_capital_labour_split_at_median():
    df = pd.DataFrame({"industry": ["1711", "1712", "2511", "3911", "4011"], "year": 2004,
                       "net_fixed_assets": [10.0, 30, 500, 300, 200], "employment": [10, 10, 10, 10, 10]})
    # K/L by CIC2: 17 → 2, 25 → 50, 39 → 30, 40 → 20; median 25
    assert C.capital_labour_split(df).tolist() == ["labour", "labour", "capital", "capital", "labour"]
