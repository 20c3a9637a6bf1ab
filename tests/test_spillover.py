"""Spillover measures (methods §7) against hand computations on tiny worlds, and a brute-force oracle."""

import math

import numpy as np
import pandas as pd
import pytest

from eqexp.data.validate import DataValidationError
from eqexp.measures import spillover as S

ln1 = math.log1p


def accounts(years=(2005,)) -> pd.DataFrame:
    """Six firms. Industry 1711: firms 1, 2, 3 (exporters) and 5 (never exports); 1712 (same CIC2 17): firm 6;
    2710: firm 4, alone in its industry and its CIC2. Cities: 1101 = {1, 2, 4}, 1102 = {3, 5}, 1201 = {6}."""
    base = pd.DataFrame({
        "firm_id": [1, 2, 3, 4, 5, 6],
        "industry": ["1711", "1711", 1711, 2710, 1711, 1712],  # text and integer codes mixed, as in raw files
        "city": [1101, 1101, 1102, 1101, 1102, 1201],
        "province": [11, 11, 11, 11, 11, 12],
        "total_assets": 1000.0,
        "employment": 50,
    })
    return pd.concat([base.assign(year=y) for y in years], ignore_index=True)


def flows(years=(2005,)) -> pd.DataFrame:
    """2005 exports (USD): firm 1 A→US 100, B→JP 50 (total 150); firm 2 A→US 300; firm 3 C→DE 600 (processing
    trade, mode 14); firm 4 D→US 80; firm 6 A→US 40, E→US 10 (total 50). Products: A 000100 (firms 1, 2, 6),
    B 000200 (1 only), C 000300 (3 only), D 000400 (4), E 000500 (6)."""
    rows = [
        (1, "000100", "US", 100.0, "10"), (1, "000200", "JP", 50.0, "10"), (2, "000100", "US", 300.0, "10"),
        (3, "000300", "DE", 600.0, "14"), (4, "000400", "US", 80.0, "10"), (6, "000100", "US", 40.0, "10"),
        (6, "000500", "US", 10.0, "10"),
    ]
    df = pd.DataFrame(rows, columns=["firm_id", "hs6", "destination", "value_usd", "trade_mode"])
    df = df.assign(quantity=1.0, unit="kg")
    return pd.concat([df.assign(year=y) for y in years], ignore_index=True)


def by_firm(out: pd.DataFrame, year: int = 2005) -> pd.DataFrame:
    return out[out["year"] == year].set_index("firm_id")


@pytest.fixture(scope="module")
def contemporaneous():
    out, log = S.spillover_measures(flows(), accounts(), lag=0)
    return by_firm(out), log


def test_leave_one_out_excludes_the_firm_itself(contemporaneous):
    o, _ = contemporaneous
    # industry 1711 exports 150 + 300 + 600 = 1050; each firm's peers export the total minus its own
    assert o.loc[1, "spill_scale_total"] == pytest.approx(ln1(900))
    assert o.loc[2, "spill_scale_total"] == pytest.approx(ln1(750))
    assert o.loc[3, "spill_scale_total"] == pytest.approx(ln1(450))
    assert o.loc[5, "spill_scale_total"] == pytest.approx(ln1(1050))  # a non-exporter has all exporters as peers
    assert o.loc[[1, 2, 3, 5], "spill_npeers"].tolist() == [2, 2, 2, 3]
    assert o.loc[1, "spill_scale_mean"] == pytest.approx(ln1(450))
    assert o.loc[5, "spill_scale_mean"] == pytest.approx(ln1(350))
    assert (o["spill_scale"] == o["spill_scale_total"]).all()  # the default headline
    assert o.loc[1, "spill_div"] == o.loc[1, "spill_div_hs6"]


def test_alone_in_industry_has_zero_peers_not_missing(contemporaneous):
    o, _ = contemporaneous
    four = o.loc[4]
    assert four["spill_npeers"] == 0
    for col in ("spill_scale", "spill_scale_total", "spill_scale_dest", "spill_scale_mean", "spill_div_hs6",
                "spill_div_dest", "spill_div_pairs", "cross_scale", "cross_div_hs6"):
        assert four[col] == 0.0, col
    missing, _ = S.spillover_measures(flows(), accounts(), lag=0, alone="missing")
    m = by_firm(missing)
    assert m.loc[4, "spill_npeers"] == 0
    assert m.loc[4, ["spill_scale", "spill_scale_total", "spill_scale_dest", "spill_div", "spill_div_pairs"]].isna().all()
    assert m.loc[1, "spill_scale"] == pytest.approx(ln1(900))  # firms with peers are untouched
    counted, _ = S.spillover_measures(flows(), accounts(), lag=0, alone="missing", peer_scale="count")
    assert np.isnan(by_firm(counted).loc[4, "spill_scale"])


def test_diversity_counts_only_items_other_firms_export(contemporaneous):
    o, _ = contemporaneous
    # 1711 products: A (firms 1, 2), B (1 only), C (3 only). B counts for 2 and 3 but not for 1; C not for 3.
    assert o.loc[1, "spill_div_hs6"] == pytest.approx(ln1(2))  # A (via 2), C
    assert o.loc[2, "spill_div_hs6"] == pytest.approx(ln1(3))  # A (via 1), B, C
    assert o.loc[3, "spill_div_hs6"] == pytest.approx(ln1(2))  # A, B
    assert o.loc[5, "spill_div_hs6"] == pytest.approx(ln1(3))
    # destinations: US (1, 2), JP (1 only), DE (3 only)
    assert o.loc[[1, 2, 3], "spill_div_dest"].tolist() == pytest.approx([ln1(2), ln1(3), ln1(2)])
    # pairs: (A, US) (1, 2), (B, JP) (1), (C, DE) (3)
    assert o.loc[[1, 2, 3], "spill_div_pairs"].tolist() == pytest.approx([ln1(2), ln1(3), ln1(2)])
    other, _ = S.spillover_measures(flows(), accounts(), lag=0, peer_diversity="pairs", scope="industry")
    assert by_firm(other).loc[2, "spill_div"] == pytest.approx(ln1(3))


def test_destination_specific_scale_weighted_by_own_shares(contemporaneous):
    o, _ = contemporaneous
    # firm 1 ships 2/3 of its value to US (peers there: firm 2, 300) and 1/3 to JP (no peer): 2/3 ln 301 + 1/3 ln 1
    assert o.loc[1, "spill_scale_dest"] == pytest.approx(2 / 3 * math.log(301))
    assert o.loc[2, "spill_scale_dest"] == pytest.approx(math.log(101))  # US only; firm 1 sends 100 there
    assert o.loc[3, "spill_scale_dest"] == 0.0  # nobody else serves DE
    assert np.isnan(o.loc[5, "spill_scale_dest"])  # no exports, no shares
    dest, _ = S.spillover_measures(flows(), accounts(), lag=0, peer_scale="dest", scope="industry")
    assert by_firm(dest).loc[1, "spill_scale"] == pytest.approx(2 / 3 * math.log(301))


def test_city_and_city_industry_peers(contemporaneous):
    o, _ = contemporaneous
    # city 1101: firms 1 (150), 2 (300), 4 (80, industry 2710)
    assert o.loc[1, "spill_city_scale"] == pytest.approx(ln1(380))
    assert o.loc[4, "spill_city_scale"] == pytest.approx(ln1(450))
    assert o.loc[4, "spill_city_npeers"] == 2
    assert o.loc[1, "spill_city_div_hs6"] == pytest.approx(ln1(2))  # A (firm 2), D (firm 4)
    assert o.loc[4, "spill_city_div_hs6"] == pytest.approx(ln1(2))  # A, B
    assert o.loc[4, "spill_city_div_dest"] == pytest.approx(ln1(2))  # US, JP
    # same city and industry: firm 1's only peer is firm 2; firm 4 is alone in (1101, 2710)
    assert o.loc[1, "spill_cityind_scale"] == pytest.approx(ln1(300))
    assert o.loc[4, "spill_cityind_scale"] == 0.0
    # city 1102: firm 3 exports, firm 5 does not
    assert o.loc[3, "spill_city_npeers"] == 0 and o.loc[3, "spill_city_scale"] == 0.0
    assert o.loc[5, "spill_city_scale"] == pytest.approx(ln1(600))
    assert o.loc[6, "spill_city_npeers"] == 0


def test_density_by_hand(contemporaneous):
    o, _ = contemporaneous
    # (1711, 2005): firms 1, 2, 3, 5, exporters 1, 2, 3 -> 3/4, the same for every firm of the cell, f included
    assert o.loc[[1, 2, 3, 5], "density_ind"].tolist() == [0.75] * 4
    assert o.loc[4, "density_ind"] == 1.0
    # (1101, 1711): firms 1, 2, both export; (1102, 1711): firms 3 (exports), 5 (does not)
    assert o.loc[[1, 2, 3, 5], "density_city_ind"].tolist() == [1.0, 1.0, 0.5, 0.5]
    logc, _ = S.spillover_measures(flows(), accounts(), lag=0, density="log_count")
    assert by_firm(logc).loc[1, "density_ind"] == pytest.approx(math.log(4))


def test_cross_industry_within_cic2(contemporaneous):
    o, _ = contemporaneous
    # CIC2 17: firm 6 (1712) sees 1711's exporters, and 1711's firms see firm 6
    assert o.loc[6, "cross_scale"] == pytest.approx(ln1(1050))
    assert o.loc[6, "cross_npeers"] == 3
    assert o.loc[6, "cross_div_hs6"] == pytest.approx(ln1(3))  # A, B, C
    assert o.loc[6, "cross_scale_dest"] == pytest.approx(math.log(401))  # all of 6's exports go to US: 100 + 300
    for f in (1, 2, 3, 5):
        assert o.loc[f, "cross_scale"] == pytest.approx(ln1(50))
        assert o.loc[f, "cross_div_hs6"] == pytest.approx(ln1(2))  # A and E, via firm 6
        assert o.loc[f, "cross_div_dest"] == pytest.approx(ln1(1))
    assert o.loc[4, "cross_npeers"] == 0 and o.loc[4, "cross_scale"] == 0.0  # 2710 is the only CIC4 of CIC2 27


def test_lag_is_last_years_contemporaneous_value_and_missing_in_the_first_year():
    acc = accounts((2004, 2005))
    fl = flows((2004, 2005))
    fl.loc[(fl["year"] == 2005) & (fl["firm_id"] == 2), "value_usd"] = 999.0  # 2005 must not leak into lag-1 values
    lagged, log = S.spillover_measures(fl, acc)  # lag=1 is the default
    now, _ = S.spillover_measures(fl, acc, lag=0, dest_weights="current")
    cols = [c for c in S.columns() if not c.endswith("scale_dest")]  # current shares differ between years
    a = by_firm(lagged, 2005)[cols]
    b = by_firm(now, 2004)[cols]
    pd.testing.assert_frame_equal(a, b)
    assert by_firm(lagged, 2004)[S.columns()].isna().all().all()
    assert by_firm(lagged, 2005).loc[1, "spill_scale"] == pytest.approx(ln1(900))
    assert [e["step"] for e in log][-4:] == ["spill_year_missing", "spill_no_industry", "spill_no_city", "spillover"]
    assert "6 firm-year(s)" in log[-4]["reason"]
    # destination weights: lagged shares reproduce last year's value exactly; current shares use this year's
    lag_w, _ = S.spillover_measures(fl, acc, dest_weights="lagged")
    assert by_firm(lag_w, 2005)["spill_scale_dest"].equals(by_firm(now, 2004)["spill_scale_dest"])
    # an entrant (absent in 2004) gets its industry's 2004 activity in full
    entrant = pd.concat([acc, pd.DataFrame({"firm_id": [7], "year": [2005], "industry": [1711], "city": [1101]})])
    out, _ = S.spillover_measures(fl, entrant)
    assert by_firm(out, 2005).loc[7, "spill_scale"] == pytest.approx(ln1(1050))
    assert by_firm(out, 2005).loc[7, "density_ind"] == 0.75  # the 2004 cell, without the entrant


def test_lag_follows_the_firms_current_industry():
    # firm 6 moves from 1712 (2004) to 1711 (2005): in 2005 it gets 1711's 2004 activity in full (it was not there),
    # and its own 2004 exports are not cross information either (only other firms count)
    acc = accounts((2004, 2005))
    acc.loc[(acc["firm_id"] == 6) & (acc["year"] == 2005), "industry"] = 1711
    out, _ = S.spillover_measures(flows((2004, 2005)), acc)
    six = by_firm(out, 2005).loc[6]
    assert six["spill_scale"] == pytest.approx(ln1(1050)) and six["spill_npeers"] == 3
    assert six["cross_npeers"] == 0 and six["cross_scale"] == 0.0 and six["cross_div_hs6"] == 0.0
    assert by_firm(out, 2005).loc[1, "spill_npeers"] == 2  # 1711's firms saw 1712's firm 6 in 2004 as cross
    assert by_firm(out, 2005).loc[1, "cross_scale"] == pytest.approx(ln1(50))


def test_gap_year_gives_missing():
    acc = accounts((2004, 2006))
    out, _ = S.spillover_measures(flows((2004, 2006)), acc)
    assert by_firm(out, 2006)[S.columns()].isna().all().all()  # 2005 is not observed
    two, _ = S.spillover_measures(flows((2004, 2006)), acc, lag=2)
    assert by_firm(two, 2006).loc[1, "spill_scale"] == pytest.approx(ln1(900))


def test_general_trade_only_drops_processing_flows():
    log = []
    kept = S.general_trade(flows(), log=log)
    assert len(kept) == 6 and log[0]["step"] == "trade_mode" and log[0]["dropped"] == 1
    out, log = S.spillover_measures(flows(), accounts(), lag=0, trade_modes=S.GENERAL_TRADE)
    o = by_firm(out)
    assert log[0]["step"] == "trade_mode" and log[0]["dropped"] == 1
    # firm 3's only flow is processing trade: it is no longer an exporter, nor a peer
    assert o.loc[1, "spill_scale"] == pytest.approx(ln1(300)) and o.loc[1, "spill_npeers"] == 1
    assert o.loc[1, "spill_div_hs6"] == pytest.approx(ln1(1))  # C is gone
    assert o.loc[3, "spill_scale"] == pytest.approx(ln1(450)) and np.isnan(o.loc[3, "spill_scale_dest"])
    assert o.loc[1, "density_ind"] == 0.5
    assert o.loc[6, "cross_scale"] == pytest.approx(ln1(450))


def test_unmatched_and_bad_flows_are_logged_and_ignored():
    fl = pd.concat([flows(), pd.DataFrame({"firm_id": [99, 2], "hs6": ["000100", "000900"], "destination": ["US", "US"],
                                           "value_usd": [5000.0, 0.0], "year": [2005, 2005]})], ignore_index=True)
    out, log = S.spillover_measures(fl, accounts(), lag=0)
    steps = {e["step"]: e["dropped"] for e in log}
    assert steps["spill_bad_flows"] == 1 and steps["spill_unmatched"] == 1
    assert by_firm(out).loc[1, "spill_scale"] == pytest.approx(ln1(900))  # firm 99 has no industry: not a peer


def test_missing_industry_or_city_gives_missing_for_those_scopes_only():
    acc = accounts()
    acc.loc[acc["firm_id"] == 2, "industry"] = None
    acc.loc[acc["firm_id"] == 4, "city"] = np.nan
    out, log = S.spillover_measures(flows(), acc, lag=0)
    o = by_firm(out)
    assert o.loc[2, ["spill_scale", "spill_cityind_scale", "cross_scale", "density_ind"]].isna().all()
    assert o.loc[2, "spill_city_scale"] == pytest.approx(ln1(150))  # firm 4 has no city: only firm 1 is left
    assert o.loc[1, "spill_scale"] == pytest.approx(ln1(600)) and o.loc[1, "spill_npeers"] == 1  # 2 is no peer
    assert o.loc[1, "spill_city_scale"] == pytest.approx(ln1(300))  # 2 still is a city peer
    assert o.loc[4, ["spill_city_scale", "spill_cityind_scale"]].isna().all() and o.loc[4, "spill_scale"] == 0.0
    assert "1 firm-year(s) without an industry" in next(e["reason"] for e in log if e["step"] == "spill_no_industry")


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="peer_scale"):
        S.spillover_measures(flows(), accounts(), peer_scale="sum")
    with pytest.raises(ValueError, match="scope"):
        S.spillover_measures(flows(), accounts(), scope="province")
    with pytest.raises(DataValidationError, match="same type"):
        S.spillover_measures(flows().assign(firm_id=lambda d: "F" + d["firm_id"].astype(str)), accounts())
    with pytest.raises(DataValidationError, match="city"):
        S.spillover_measures(flows(), accounts().drop(columns="city"))
    with pytest.raises(DataValidationError, match="numeric codes"):
        S.spillover_measures(flows(), accounts().assign(industry="17x1"))
    out, _ = S.spillover_measures(flows(), accounts().drop(columns="city"), scope=("industry", "cross"))
    assert list(out.columns[2:]) == S.columns(("industry", "cross"))


# --------------------------------------------------------------------------- brute-force oracle


def brute(fl, acc, lag, scope, dest_weights):
    """The definitions of the module docstring, one firm-year at a time."""
    acc = acc.assign(industry=pd.to_numeric(acc["industry"]))
    acc = acc.assign(cic2=acc["industry"] // 100)
    attrs = acc.set_index(["firm_id", "year"])
    observed = set(acc["year"]) & set(fl["year"])
    fl = fl.merge(acc[["firm_id", "year"]], on=["firm_id", "year"])
    exp = fl.groupby(["firm_id", "year"])["value_usd"].sum()
    member = {"industry": lambda a, b: a.industry == b.industry, "city": lambda a, b: a.city == b.city,
              "city_industry": lambda a, b: a.city == b.city and a.industry == b.industry,
              "cross": lambda a, b: a.cic2 == b.cic2 and a.industry != b.industry}[scope]
    rows = []
    for (f, t), a in attrs.iterrows():
        s = t - lag
        if s not in observed:
            rows.append([np.nan] * 5)
            continue
        peers = [g for (g, y) in exp.index if y == s and g != f and member(attrs.loc[(g, s)], a)]
        pf = fl[(fl["year"] == s) & fl["firm_id"].isin(peers)]
        wy = t if dest_weights == "current" else s
        own = fl[(fl["firm_id"] == f) & (fl["year"] == wy)].groupby("destination")["value_usd"].sum()
        dest = np.nan
        if len(own):
            to = pf.groupby("destination")["value_usd"].sum()
            dest = sum(v / own.sum() * math.log1p(to.get(c, 0.0)) for c, v in own.items())
        pairs = len(pf[["hs6", "destination"]].drop_duplicates())
        total = pf["value_usd"].sum()
        rows.append([ln1(total), len(peers), ln1(total / len(peers) if peers else 0.0), ln1(pf["hs6"].nunique()),
                     ln1(pf["destination"].nunique()), ln1(pairs), dest])
    return pd.DataFrame(rows, index=attrs.index,
                        columns=["scale_total", "npeers", "scale_mean", "div_hs6", "div_dest", "div_pairs", "scale_dest"])


def brute_density(acc, fl, lag, keys):
    """Exporters / firms of f's year-t cell (keys) in year t − lag, f included."""
    acc = acc.assign(industry=pd.to_numeric(acc["industry"]))
    exporters = set(map(tuple, fl[["firm_id", "year"]].drop_duplicates().to_numpy()))
    observed = set(acc["year"]) & set(fl["year"])
    out = []
    for _, a in acc.iterrows():
        cell = acc[(acc["year"] == a["year"] - lag) & (acc[keys] == a[keys]).all(axis=1)]
        share = np.mean([(g, y) in exporters for g, y in zip(cell["firm_id"], cell["year"])]) if len(cell) else np.nan
        out.append(share if a["year"] - lag in observed else np.nan)
    return np.array(out)


def random_world(seed=3):
    rng = np.random.default_rng(seed)
    n_firms, years = 18, [2003, 2004, 2005]  # firms 15..17 never export; ids 18, 19 are not in the accounts
    firm_ind = rng.choice([1711, 1712, 1713, 2710], n_firms)
    firm_city = rng.choice([1101, 1102], n_firms)
    acc = []
    for f in range(n_firms):
        for y in years:
            if rng.random() < 0.85:
                ind = firm_ind[f] if rng.random() < 0.8 else rng.choice([1711, 1712, 1713])  # some switch
                acc.append((f, y, ind, firm_city[f]))
    acc = pd.DataFrame(acc, columns=["firm_id", "year", "industry", "city"])
    fl = pd.DataFrame({"firm_id": rng.choice([*range(15), 18, 19], 120), "year": rng.choice(years, 120),
                       "hs6": rng.choice(["000100", "000200", "000300", "000400", "000500"], 120),
                       "destination": rng.choice(["US", "JP", "DE"], 120),
                       "value_usd": rng.integers(1, 50, 120).astype(float)})
    return fl, acc


@pytest.mark.parametrize("lag,dest_weights", [(0, "current"), (1, "current"), (1, "lagged")])
def test_matches_brute_force_on_a_random_world(lag, dest_weights):
    fl, acc = random_world()
    out, _ = S.spillover_measures(fl, acc, lag=lag, dest_weights=dest_weights)
    out = out.set_index(["firm_id", "year"])
    for scope, prefix in S.PREFIX.items():
        want = brute(fl, acc, lag, scope, dest_weights)
        got = out.loc[want.index, [f"{prefix}_{c}" for c in want.columns]]
        np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), rtol=1e-12, atol=1e-12,
                                   err_msg=f"{scope}, lag {lag}")
    out = out.loc[list(zip(acc["firm_id"], acc["year"]))]
    np.testing.assert_allclose(out["density_ind"], brute_density(acc, fl, lag, ["industry"]))
    np.testing.assert_allclose(out["density_city_ind"], brute_density(acc, fl, lag, ["city", "industry"]))
