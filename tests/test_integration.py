import itertools
import math
import statistics

import numpy as np
import pandas as pd
import pytest

from eqexp.data.validate import DataValidationError
from eqexp.measures import integration as MI
from eqexp.data.geography import PROVINCE_CODES as PROVINCES

# 3 provinces (Beijing, Tianjin, Hebei: all mutually adjacent) × 3 categories × 2 years, chain indices.
HAND = {
    (11, "grain", 2005): 102.0, (12, "grain", 2005): 101.0, (13, "grain", 2005): 105.0,
    (11, "fuel", 2005): 100.0, (12, "fuel", 2005): 103.0, (13, "fuel", 2005): 99.0,
    (11, "textiles", 2005): 110.0, (12, "textiles", 2005): 104.0, (13, "textiles", 2005): 100.0,
    (11, "grain", 2006): 98.0, (12, "grain", 2006): 104.0, (13, "grain", 2006): 101.0,
    (11, "fuel", 2006): 107.0, (12, "fuel", 2006): 102.0, (13, "fuel", 2006): 103.0,
    (11, "textiles", 2006): 99.5, (12, "textiles", 2006): 100.5, (13, "textiles", 2006): 100.0,
}


def hand_index() -> pd.DataFrame:
    return pd.DataFrame([(p, y, k, v) for (p, k, y), v in HAND.items()], columns=["province", "year", "category", "index"])


def hand_segmentation() -> dict[tuple[int, int], float]:
    """Province-year segmentation written out with loops, independently of the vectorised code."""
    pairs, cats, years = [(11, 12), (11, 13), (12, 13)], ["grain", "fuel", "textiles"], [2005, 2006]
    absdq = {(i, j, k, t): abs(math.log(HAND[i, k, t]) - math.log(HAND[j, k, t])) for i, j in pairs for k in cats for t in years}
    mean = {(k, t): sum(absdq[i, j, k, t] for i, j in pairs) / len(pairs) for k in cats for t in years}
    var = {(i, j, t): statistics.variance([absdq[i, j, k, t] - mean[k, t] for k in cats]) for i, j in pairs for t in years}
    return {(p, t): statistics.mean(v for (i, j, tt), v in var.items() if tt == t and p in (i, j))
            for p in (11, 12, 13) for t in years}


def random_index(provinces=PROVINCES, years=range(2003, 2009), k=8, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = itertools.product(provinces, years, [f"c{c}" for c in range(k)])
    df = pd.DataFrame(rows, columns=["province", "year", "category"])
    return df.assign(index=100 + rng.normal(2, 1.5, len(df)))


def test_hand_computation_three_provinces():
    out, log = MI.market_integration(hand_index(), transform="seg", min_categories=3)
    got = out.set_index(["province", "year"])["seg"].to_dict()
    expected = hand_segmentation()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12)
    assert (out["n_partners"] == 2).all() and (out["seg"] == out["market"]).all()


def test_demeaned_q_has_zero_mean_per_category_year():
    changes = MI.price_changes(random_index(), "all")
    assert changes.groupby(["category", "year"])["q"].mean().abs().max() < 1e-12
    adjacent = MI.price_changes(random_index(), "adjacent")
    assert adjacent.groupby(["category", "year"])["q"].mean().abs().max() < 1e-12


def test_pair_segmentation_is_symmetric():
    index = random_index(provinces=(11, 12, 13, 14, 15))
    ordered = pd.DataFrame([(i, j) for i in range(11, 16) for j in range(11, 16) if i != j], columns=["i", "j"])
    seg = MI.pair_segmentation(MI.price_changes(index, ordered)).set_index(["i", "j", "year"])["seg"]
    for (i, j, t), v in seg.items():
        assert v == pytest.approx(seg[j, i, t], abs=1e-15)
    unordered = MI.pair_segmentation(MI.price_changes(index, "all")).set_index(["i", "j", "year"])["seg"]
    np.testing.assert_allclose(seg.loc[unordered.index], unordered, rtol=1e-12)


def test_variance_uses_ddof_1():
    changes = MI.price_changes(random_index(), "adjacent")
    seg = MI.pair_segmentation(changes)
    one = changes[(changes["i"] == 11) & (changes["j"] == 12) & (changes["year"] == 2005)]["q"].to_numpy()
    got = seg.query("i == 11 and j == 12 and year == 2005")["seg"].item()
    assert got == pytest.approx(np.var(one, ddof=1), rel=1e-12) and got != pytest.approx(np.var(one, ddof=0))


def test_transforms():
    seg = pd.Series([1e-4, 4e-4])
    assert MI.integration_index(seg, "log_sqrt_inv").tolist() == pytest.approx([math.log(100), math.log(50)])
    assert MI.integration_index(seg, "sqrt_inv").tolist() == pytest.approx([100, 50])
    assert MI.integration_index(seg, "inv").tolist() == pytest.approx([1e4, 2500])
    assert MI.integration_index(seg, "neg").tolist() == pytest.approx([-1e-4, -4e-4])
    with pytest.raises(ValueError, match="unknown transform"):
        MI.integration_index(seg, "sqrt")


def test_pair_sets():
    adjacent = MI.pair_set("adjacent", PROVINCES)
    assert len(adjacent) == 69 and (adjacent["i"] < adjacent["j"]).all()
    hainan = adjacent[(adjacent["i"] == 46) | (adjacent["j"] == 46)]
    assert hainan.values.tolist() == [[44, 46]]
    assert len(MI.pair_set("all", PROVINCES)) == 31 * 30 // 2
    assert len(MI.pair_set("adjacent", [11, 12, 46])) == 1  # pairs need both ends present


def test_min_categories_and_exclusions_are_logged():
    index = random_index(k=8)
    tibet_gap = (index["province"] == 54) & (index["category"].isin(["c0", "c1", "c2"])) & (index["year"] == 2005)
    index.loc[tibet_gap, "index"] = np.nan  # Tibet has 5 of 8 categories in 2005
    out, log = MI.market_integration(index, pairs="adjacent", min_categories=6)
    steps = {e["step"]: e for e in log}
    assert steps["price_index_missing"]["dropped"] == 3
    assert steps["pair_min_categories"]["dropped"] == 4 * 5  # Tibet's 4 neighbours × its 5 categories, 2005
    assert not ((out["province"] == 54) & (out["year"] == 2005)).any()
    out, log = MI.market_integration(random_index(), exclude=[54], pairs="all")
    assert 54 not in set(out["province"]) and (out["n_partners"] == 29).all()


def test_market_in_study_range_for_realistic_noise():
    out, _ = MI.market_integration(random_index(), pairs="adjacent")
    # CPI noise with sd 1.5 points gives Var(q) ~ 1e-4, so ln sqrt(1/seg) ~ 4 as in the study's Table 2.
    assert 3 < out["market"].median() < 5.5
    beijing = out[out["province"] == 11]
    assert (beijing["n_partners"] == 2).all()


def test_bad_index_is_rejected_with_file_and_fix():
    index = hand_index()
    index.loc[0, "index"] = 0.0
    with pytest.raises(DataValidationError, match=r"(?s)cpi\.csv: column 'index' has 1 row\(s\) with values <= 0.*Fix:"):
        MI.market_integration(index, file="cpi.csv")
    levels = hand_index().assign(index=lambda d: d["index"] * 4)  # fixed-base levels, not a chain index
    with pytest.raises(DataValidationError, match="chain index"):
        MI.market_integration(levels)


def test_lags_are_gap_aware():
    mi = pd.DataFrame({"province": [11, 11, 11, 12, 12], "year": [2004, 2005, 2007, 2004, 2005],
                       "market": [1.0, 2.0, 4.0, 10.0, 20.0]})
    out = MI.province_year_lags(mi, ks=(1, 2)).set_index(["province", "year"])
    assert out.loc[(11, 2005), "L1_market"] == 1.0
    assert np.isnan(out.loc[(11, 2007), "L1_market"])  # 2006 missing: no L1, never the 2005 value
    assert out.loc[(11, 2007), "L2_market"] == 2.0
    assert np.isnan(out.loc[(11, 2004), "L1_market"]) and out.loc[(12, 2005), "L1_market"] == 10.0
    assert len(out) == len(mi)


def test_national_segmentation_is_mean_over_pairs():
    pair_seg = MI.pair_segmentation(MI.price_changes(random_index(), "all"))
    national = MI.national_segmentation(pair_seg).set_index("year")
    assert (national["n_pairs"] == 465).all()
    assert national.loc[2005, "seg"] == pytest.approx(pair_seg.loc[pair_seg["year"] == 2005, "seg"].mean())
