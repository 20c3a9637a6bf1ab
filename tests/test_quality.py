import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from eqexp.data.validate import DataValidationError
from eqexp.measures import quality as Q


def flows(n=400, seed=0, products=("847130", "620342", "850440", "940360", "610910"), dests=6, years=(2004, 2005, 2006)):
    """Random firm×hs6×destination×year flows, one unit per product."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "firm_id": rng.integers(0, 60, n),
        "hs6": rng.choice(products, n),
        "destination": rng.choice([f"D{i}" for i in range(dests)], n),
        "year": rng.choice(years, n),
        "value_usd": rng.lognormal(9, 1, n),
        "quantity": rng.lognormal(6, 1, n),
    })
    return df.drop_duplicates(["firm_id", "hs6", "destination", "year"]).reset_index(drop=True)


def ols_dummy_residuals(df: pd.DataFrame) -> np.ndarray:
    X = pd.get_dummies(df["hs6"], drop_first=True, dtype=float).join(
        pd.get_dummies(df["destination"] + "_" + df["year"].astype(str), dtype=float))
    y = np.log(df["quantity"]) + df["sigma"] * np.log(df["value_usd"] / df["quantity"])
    return sm.OLS(y.to_numpy(), X.to_numpy()).fit().resid


@pytest.mark.parametrize("sigma", [5.0, {"847": 3.0, "620": 8.0, "850440": 2.5}])
def test_residuals_match_explicit_dummy_ols(sigma):
    df = Q.drop_singletons(flows())
    out = Q.ksw_residual(df, sigma)
    np.testing.assert_allclose(out["resid"], ols_dummy_residuals(out), atol=1e-8)


def test_demean_three_way_matches_ols():
    rng = np.random.default_rng(3)
    g = [rng.integers(0, k, 300) for k in (7, 5, 4)]
    y = rng.normal(size=300) + g[0] * 0.3
    X = np.column_stack([np.ones(300)] + [(g_ == v).astype(float) for g_ in g for v in range(1, g_.max() + 1)])
    r, sweeps = Q.demean(y, g, tol=1e-12)
    np.testing.assert_allclose(r, sm.OLS(y, X).fit().resid, atol=1e-9)
    assert sweeps > 1


def test_quality_in_unit_interval_and_extremes_hit():
    log = []
    fq = Q.flow_quality(flows(), log=log)
    assert fq["r_quality"].between(0, 1).all()
    assert (fq.groupby("hs6")["r_quality"].agg(["min", "max"]) == [0.0, 1.0]).all().all()
    tq = Q.firm_year_quality(fq)
    assert tq["quality"].between(0, 1).all() and tq[["firm_id", "year"]].duplicated().sum() == 0
    expected = fq.groupby(["firm_id", "year"]).apply(lambda d: np.average(d["r_quality"], weights=d["value_usd"]))
    np.testing.assert_allclose(tq.set_index(["firm_id", "year"])["quality"], expected, atol=1e-14)


def test_demean_weakly_connected_design_matches_ols_quickly():
    """Two blocks of products and destination-years linked by two flows: plain sweeps need ~14,000 passes."""
    rng = np.random.default_rng(1)
    block = rng.random(3000) < 0.5
    a = np.where(block, rng.integers(0, 30, 3000), rng.integers(30, 60, 3000))
    b = np.where(block, rng.integers(0, 20, 3000), rng.integers(20, 40, 3000))
    b[:2] = [25, 5]
    y = rng.normal(size=3000) + (b > 19) * 3 + a * 0.1
    r, iterations = Q.demean(y, [a, b])
    dummies = [(a == v).astype(float) for v in range(1, 60)] + [(b == v).astype(float) for v in range(1, 40)]
    X = np.column_stack([np.ones(3000), *dummies])
    np.testing.assert_allclose(r, sm.OLS(y, X).fit().resid, atol=1e-8)
    assert iterations < 200


@pytest.mark.parametrize("sigma", [5.0, 10.0, {"847": 3.0, "620": 8.0}])
def test_tq_invariant_to_dividing_by_sigma_minus_1(sigma):
    """σ is constant within a product, so min–max within product removes the rescaling (methods §1.2)."""
    a = Q.firm_year_quality(Q.flow_quality(flows(), sigma=sigma, divide_by_sigma=True))
    b = Q.firm_year_quality(Q.flow_quality(flows(), sigma=sigma, divide_by_sigma=False))
    np.testing.assert_allclose(a["quality"], b["quality"], atol=1e-12)


def test_sigma_changes_quality_but_keeps_it_correlated():
    q5 = Q.firm_year_quality(Q.flow_quality(flows(2000, seed=1), sigma=5.0))["quality"]
    q10 = Q.firm_year_quality(Q.flow_quality(flows(2000, seed=1), sigma=10.0))["quality"]
    assert not np.allclose(q5, q10) and np.corrcoef(q5, q10)[0, 1] > 0.8


def test_normalise_by_product_destination_year_drops_flat_cells():
    log = []
    fq = Q.flow_quality(flows(), normalise_by="hs6_dest_year", log=log)
    assert fq["r_quality"].between(0, 1).all()
    cells = fq.groupby(["hs6", "destination", "year"]).size()
    assert (cells >= 2).all()  # one-flow cells have max == min and are dropped
    assert log[-1]["step"] == "flat_groups" and log[-1]["dropped"] > 0


def test_singletons_removed_iteratively():
    df = pd.DataFrame({"hs6": ["P1", "P1", "P2", "P2", "P3", "P3"],
                       "destination": ["A", "A", "A", "B", "A", "A"], "year": 2004})
    # B is a singleton; without it P2 is one; the rest is fine: two passes, rows 2 and 3 go.
    log = []
    out = Q.drop_singletons(df, log=log)
    assert out.index.tolist() == [0, 1, 4, 5]
    assert log == [{"step": "singletons", "rows_in": 6, "dropped": 2, "rows_out": 4,
                    "reason": "singletons in hs6 or destination×year, removed iteratively in 2 pass(es)"}]


# --------------------------------------------------------------------------- cleaning steps, one by one


def test_drop_missing_and_nonpositive():
    df = pd.DataFrame({
        "firm_id": ["f1", None, "f3", "f4", "f5", "f6", "f7"],
        "hs6": ["847130", "847130", " ", "847130", "847130", "847130", "847130"],
        "destination": ["US", "US", "US", "US", np.nan, "US", "US"],
        "year": [2004] * 7,
        "value_usd": [100.0, 100, 100, np.nan, 100, 0, 100],
        "quantity": [10.0, 10, 10, 10, 10, 10, -1],
    })
    log = []
    out = Q.drop_nonpositive(Q.drop_missing(df, log), log)
    assert out["firm_id"].tolist() == ["f1"]
    assert [(e["step"], e["dropped"]) for e in log] == [("missing_keys", 4), ("nonpositive", 2)]


def test_drop_intermediaries_by_name_and_skip_without_names():
    names = ["上海进出口有限公司", "浙江经贸公司", "华为技术有限公司", "深圳贸易公司", "科贸发展", "外经集团", None]
    df = pd.DataFrame({"firm_name": names, "x": range(7)})
    log = []
    assert Q.drop_intermediaries(df, log=log)["x"].tolist() == [2, 6]
    assert log[0]["dropped"] == 5
    assert Q.drop_intermediaries(df.drop(columns="firm_name"), log=log).shape[0] == 7
    assert log[1]["reason"].startswith("skipped")


def test_trade_mode_filter_matches_codes_as_text_or_numbers():
    df = pd.DataFrame({"trade_mode": [10, 14, 15, 10], "x": range(4)})
    assert Q.keep_trade_modes(df, ["10"])["x"].tolist() == [0, 3]
    assert Q.keep_trade_modes(df.astype({"trade_mode": float}), [10])["x"].tolist() == [0, 3]
    assert Q.keep_trade_modes(df.astype({"trade_mode": str}), [10, 15])["x"].tolist() == [0, 2, 3]
    assert Q.keep_trade_modes(df, None) is df


def test_units_modal_per_product_year_then_drop_products_that_change():
    df = pd.DataFrame({
        "hs6": ["A"] * 4 + ["B"] * 3 + ["C"] * 2,
        "year": [2004, 2004, 2004, 2005, 2004, 2004, 2005, 2004, 2004],
        "unit": ["kg", "kg", "pcs", "kg", "kg", "kg", "pcs", "kg", "pcs"],
        "x": range(9),
    })
    log = []
    out = Q.harmonise_units(df, log)
    # A: the pcs record goes; B: kg in 2004, pcs in 2005, so the product goes; C: a tie, kg wins (sort order).
    assert out["x"].tolist() == [0, 1, 3, 7]
    assert [(e["step"], e["dropped"]) for e in log] == [("unit_not_modal", 2), ("unit_changes", 3)]


def test_aggregate_monthly_records():
    df = pd.DataFrame({"firm_id": [1, 1, 1], "hs6": ["847130"] * 3, "destination": ["US", "US", "JP"],
                       "year": 2004, "value_usd": [10.0, 20, 5], "quantity": [1.0, 2, 3]})
    out = Q.aggregate_flows(df)
    assert out.sort_values("destination")[["value_usd", "quantity"]].to_numpy().tolist() == [[5, 3], [30, 3]]


def test_drop_small_flows():
    df = pd.DataFrame({"value_usd": [49.99, 50, 1000, 1000], "quantity": [5, 5, 0.5, 1]})
    assert Q.drop_small_flows(df).index.tolist() == [1, 3]


def test_group_percentile_is_stata_pctile():
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=700), rng.integers(0, 7, 700)
    for p in (1, 5, 50, 99):
        expected = [np.percentile(x[g == k], p, method="averaged_inverted_cdf") for k in range(7)]
        np.testing.assert_allclose(Q.group_percentiles(x, g, [p])[0], expected)


def test_unit_value_outliers_within_product():
    # Product A: unit values 1..100, so P1 = 1.5 and P99 = 99.5 (type 2): 1 and 100 go. Product B is flat.
    df = pd.DataFrame({"hs6": ["A"] * 100 + ["B"] * 3, "year": 2004,
                       "value_usd": np.r_[np.arange(1, 101), [7, 7, 7]].astype(float), "quantity": 1.0})
    log = []
    out = Q.drop_unit_value_outliers(df, log=log)
    assert sorted(set(range(103)) - set(out.index)) == [0, 99]
    assert log[0]["dropped"] == 2


def test_thin_products_and_excluded_chapters():
    df = pd.DataFrame({"hs6": ["847130"] * 3 + ["940360"] * 2})
    assert Q.drop_thin_products(df, min_obs=3)["hs6"].unique().tolist() == ["847130"]
    codes = pd.Series([10121, 270900, 280110, 710812, 847130, 930100, 940360, 960000, 970100, 980000, 999999])
    out = Q.drop_excluded_chapters(pd.DataFrame({"hs6": Q.hs6_text(codes)}))
    assert out["hs6"].tolist() == ["280110", "847130", "940360", "960000"]


def test_clean_flows_runs_steps_in_order_and_log_adds_up():
    df = flows(3000).assign(unit="kg", trade_mode=10, firm_name="某某制造有限公司")
    df.loc[:9, "firm_name"] = "某某进出口公司"
    log = []
    out = Q.clean_flows(df, min_obs_per_product=50, log=log)
    assert [e["step"] for e in log] == ["missing_keys", "nonpositive", "intermediaries", "unit_not_modal", "unit_changes",
                                        "aggregate", "small_flows", "unit_value_outliers", "thin_products", "excluded_chapters"]
    assert log[2]["dropped"] == 10
    assert all(e["rows_in"] - e["dropped"] == e["rows_out"] for e in log)
    assert all(a["rows_out"] == b["rows_in"] for a, b in zip(log, log[1:])) and log[-1]["rows_out"] == len(out)


def test_ksw_quality_end_to_end_and_missing_column_error():
    df = flows(3000).assign(unit="kg")
    tq, log = Q.ksw_quality(df, min_obs_per_product=50)
    assert tq["quality"].between(0, 1).all() and {"sigma", "residual", "singletons"} <= {e["step"] for e in log}
    with pytest.raises(DataValidationError, match="missing required column"):
        Q.ksw_quality(df.drop(columns="unit"))


def test_sigma_lookup_order_and_validation():
    hs6 = pd.Series(["847130", "847150", "620342", "622000", "010121"])
    table = {"847130": 2.0, "847": 4.0, "620": 6.0, "621": 10.0}
    out = Q.assign_sigma(hs6, table, fallback=5.0)
    assert out["sigma"].tolist() == [2.0, 4.0, 6.0, 8.0, 5.0]  # hs6, hs3, hs3, HS2 '62' mean of 6 and 10, constant
    assert out["sigma_source"].tolist() == ["hs6", "hs3", "hs3", "hs2_mean", "constant"]
    with pytest.raises(DataValidationError, match="exceed 1"):
        Q.assign_sigma(hs6, 1.0)
    with pytest.raises(DataValidationError, match="text codes"):
        Q.assign_sigma(hs6, {"84": 3.0})


def test_blank_and_integer_codes_are_cleaned_not_rejected():
    df = flows(3000).assign(unit="kg")
    df["hs6"] = df["hs6"].astype(object)
    df.loc[0, "hs6"], df.loc[1, "hs6"] = "", None
    log = []
    Q.clean_flows(df, min_obs_per_product=50, log=log)
    assert log[0]["step"] == "missing_keys" and log[0]["dropped"] == 2
    ints = Q.clean_flows(flows(3000).assign(unit="kg", hs6=lambda d: d["hs6"].astype(int)), min_obs_per_product=50)
    assert ints["hs6"].str.len().eq(6).all()
