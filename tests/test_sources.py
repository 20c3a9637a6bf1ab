"""Raw sources of the synthetic world: each one, measured by its own module, gives back the world.

Small world (4,000 firms, 24,000 firm-years); the whole panel built from these sources is
tested in test_build.py.
"""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from eqexp.data import sources as S
from eqexp.data.readers import TEXT_CODES
from eqexp.data.synthetic import SourceParams, generate_sources
from eqexp.data.synthetic.accounts import REREGISTERED, SOE_REGISTRATION
from eqexp.data.synthetic.catalogue import AGRI_CHAPTERS, ODD_UNIT
from eqexp.data.synthetic.params import INTERMEDIARY_ID0, NONEXPORTER_ID0, UNMATCHED_ID0
from eqexp.data.synthetic.price_index import CATEGORIES
from eqexp.data.validate import DataValidationError
from eqexp.measures import classify, controls, integration, mediators, quality



def keyed(df, keys=("firm_id", "year")):
    return df.set_index(list(keys)).sort_index()


# --------------------------------------------------------------------------- customs


def test_customs_layout_and_noise(tidy, raw):
    assert list(raw.customs.columns) == ["party_id", "firm_name", "zip", "phone", "hs6", "hs_vintage", "destination", "year",
                                         "month", "trade_mode", "unit", "quantity", "value_usd"]
    c = tidy.customs  # the noise is laid on the tidy records; the complications come after
    assert list(c.columns) == ["firm_id", "firm_name", "hs6", "destination", "year", "trade_mode", "unit", "quantity",
                               "value_usd"]
    hs6 = c["hs6"].astype(str)
    assert hs6.str.fullmatch(r"\d{6}").all() and hs6.str.startswith("0").any()  # leading zeros kept (chapters 02-09)
    assert set(c["trade_mode"].astype(str)) == {"10", "14", "15"}
    assert set(tidy.destinations.income_group) == {"high", "other"}
    assert len(c) < 3_000_000 / 24  # the full world stays under ~3 million yearly records (this is 1/25 of it)
    info = tidy.info["customs"]
    keys = ["firm_id", "hs6", "destination", "year"]
    inter = c["firm_name"].astype(str).str.contains("|".join(quality.INTERMEDIARY_KEYWORDS))
    assert len(c[inter].drop_duplicates(keys)) == info["intermediary_flows"] > 0
    assert (c.firm_id[inter] >= INTERMEDIARY_ID0).all()
    assert ((c.value_usd == 0) | (c.quantity == 0)).sum() == info["noise"]["zero"] > 0
    assert c.destination.isna().sum() == info["noise"]["missing_destination"] > 0
    assert (c.unit.astype(str) == ODD_UNIT).sum() == info["noise"]["odd_unit"] > 0
    agri = c.hs6.astype(str).str[:2].astype(int).isin(AGRI_CHAPTERS)
    assert len(c[agri].drop_duplicates(keys)) == info["agricultural_flows"] > 0
    assert len(c) - c[["firm_id", "hs6", "destination", "year"]].drop_duplicates().shape[0] >= info["split_flows"] > 0


def test_every_world_firm_year_exports_at_least_two_flows(world, tidy):
    n = tidy.customs.groupby(["firm_id", "year"]).size()
    per_fy = n.reindex(pd.MultiIndex.from_frame(world.panel[["firm_id", "year"]]))
    assert per_fy.notna().all() and per_fy.min() >= 2


def test_sigma_table_is_broda_weinstein_like(raw):
    sig = raw.sigma
    assert sig.hs3.str.fullmatch(r"\d{3}").all() and sig.hs3.is_unique
    assert (sig.sigma > 1).all() and 2 < sig.sigma.median() < 6
    hs3 = raw.customs.hs6.astype(str).str[:3]
    missing = ~hs3.isin(sig.hs3)  # products the table lacks: the HS2-mean fallback is exercised
    assert 0 < missing.mean() < 0.5


def test_flow_quality_tracks_the_world(world, tidy):
    """Cleaning + KSW on the customs alone: firm-year TQ correlates with latent quality ≥ 0.9."""
    tq, log = quality.ksw_quality(tidy.customs, sigma=dict(zip(tidy.sigma.hs3, tidy.sigma.sigma)))
    m = keyed(tq).join(keyed(world.latent), how="inner")
    assert len(m) >= 0.999 * len(world.panel)
    r = np.corrcoef(m.quality, m.quality_latent)[0, 1]
    assert r >= 0.9, r
    # the product ladders span [0, 1]: slope of TQ on the world's quality is 1 within a few percent
    w = keyed(world.panel).quality.reindex(m.index)
    slope = np.polyfit(w - w.groupby(level="year").transform("mean"), m.quality - m.quality.groupby(level="year").transform("mean"), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.03)
    steps = {s["step"]: s for s in log}
    assert steps["flat_groups"]["dropped"] == 0 and steps["thin_products"]["dropped"] == 0


# --------------------------------------------------------------------------- accounts


def test_accounts_reproduce_the_controls(world, tidy):
    out, log = controls.build_controls(tidy.accounts)
    m = keyed(world.panel).join(keyed(out), rsuffix="_b", how="inner")
    assert len(m) == len(world.panel)
    for col in ("scale", "age", "roa", "rdebt", "invint", "fic"):
        np.testing.assert_allclose(m[f"{col}_b"], m[col], rtol=0, atol=1e-12, err_msg=col)
    info = tidy.info["accounts"]
    bad = info["bad_rows"] + sum(info["broken_rules"].values())
    assert 0 < sum(s["dropped"] for s in log) == bad  # only the non-exporters' impossible rows go
    assert (tidy.accounts.total_assets[tidy.accounts.firm_id < UNMATCHED_ID0] > 0).all()


def test_every_accounting_rule_removes_its_planted_rows(tidy):
    """Each Cai–Liu rule is broken on its own non-exporter rows; the cleaning counts exactly those."""
    _, log = controls.build_controls(tidy.accounts)
    dropped = {s["step"]: s["dropped"] for s in log}
    planted = tidy.info["accounts"]["broken_rules"]
    assert min(planted.values()) > 0
    for step, kind in (("sales_nonpositive", "sales"), ("output_nonpositive", "output"),
                       ("net_fixed_assets_nonpositive", "net_fixed_assets"), ("assets_below_current_assets", "current_assets"),
                       ("depreciation", "depreciation")):
        assert dropped[step] == planted[kind], step
    # net fixed assets above total assets: its own rows, plus those with zero total assets (net fixed assets > 0)
    assert dropped["assets_below_net_fixed_assets"] == planted["fixed_above_total"] + tidy.info["accounts"]["zero_assets"]


def test_registration_types_give_initial_soe_status(world, tidy):
    acc = tidy.accounts[tidy.accounts.firm_id < NONEXPORTER_ID0]
    soe = classify.soe(acc, "initial")
    np.testing.assert_array_equal(soe.to_numpy(int), keyed(world.panel).soe.reindex(pd.MultiIndex.from_frame(acc[["firm_id", "year"]])).to_numpy())
    current = classify.soe(acc, "current")
    assert (current != soe).sum() > 0  # some SOEs re-registered (159) after their first year
    assert set(acc.registration_type[soe == 1]) <= {*SOE_REGISTRATION, REREGISTERED}


# --------------------------------------------------------------------------- price indices


def test_price_index_is_a_chain_index_of_ten_categories(raw, world):
    p = raw.price_index
    assert set(p.category) == set(CATEGORIES) and len(CATEGORIES) == 10
    assert p.province.nunique() == 31 and p.year.min() == 2000 and p.year.max() == 2013
    assert p["index"].between(80, 125).all()
    assert len(p) == 31 * 14 * 10


def test_all_pairs_method_returns_the_world_segmentation(raw, world):
    mi, _ = integration.market_integration(raw.price_index, pairs="all")
    m = keyed(mi, ("province", "year")).join(keyed(world.province_year, ("province", "year")), rsuffix="_w")
    np.testing.assert_allclose(m.seg, m.seg_w, rtol=1e-10)
    np.testing.assert_allclose(m.market, m.market_w, atol=1e-10)  # log_sqrt_inv is the world's market scale


@pytest.mark.parametrize(("pairs", "exclude", "floor"), [("adjacent", (), 0.99), ("all", (54,), 0.99), ("adjacent", (54,), 0.93)])
def test_other_pair_sets_rank_province_years_as_the_world(raw, world, pairs, exclude, floor):
    mi, _ = integration.market_integration(raw.price_index, pairs=pairs, exclude=exclude)
    m = keyed(mi, ("province", "year")).join(keyed(world.province_year, ("province", "year")), rsuffix="_w", how="inner")
    rho = spearmanr(m.seg, m.seg_w).statistic
    assert rho >= floor, rho  # measured: 0.997, 0.997, 0.952


def test_national_segmentation_trends_down(raw):
    mi, _ = integration.market_integration(raw.price_index, pairs="all")
    national = mi.groupby("year").seg.mean()
    assert np.polyfit(national.index, np.log(national), 1)[0] < 0


# --------------------------------------------------------------------------- education and R&D


def test_education_shares_give_the_world_human_capital(raw, world):
    edu = raw.education
    levels = list(mediators.EDUCATION_YEARS)
    np.testing.assert_allclose(edu[levels].sum(axis=1), 100, atol=1e-10)
    assert (edu[levels] > 0).all().all()
    hc = mediators.human_capital(edu)
    np.testing.assert_allclose(hc.humancapital, world.province_year.humancapital, atol=1e-12)
    row = edu.iloc[0]  # by hand: H = (0 h1 + 6 h2 + 9 h3 + 12 h4 + 12 h5 + 15 h6 + 15 h7 + 16 h8 + 19 h9) / 100
    h = sum(y * row[k] for k, y in zip(levels, (0, 6, 9, 12, 12, 15, 15, 16, 19))) / 100
    assert hc.humancapital.iloc[0] == pytest.approx(np.log(h), abs=1e-14)


@pytest.mark.parametrize("transform", ["pct", "ln_expenditure"])
def test_industry_rd_gives_the_world_rd(raw, world, transform):
    rd = raw.industry_rd
    assert (rd.rd_expenditure < mediators.MAX_RD_SHARE * rd.output).all()
    got = pd.concat([mediators.rd_intensity(part.drop(columns="province"), transform).assign(province=prov)
                     for prov, part in rd.groupby("province")])
    m = keyed(got, ("cic2", "province", "year")).join(keyed(world.rd_cells, ("cic2", "province", "year")), rsuffix="_w")
    np.testing.assert_allclose(m.rd, m.rd_w, atol=1e-12)


# --------------------------------------------------------------------------- determinism, files


def test_same_world_same_sources(world, raw):
    again = generate_sources(world)
    for name, df in raw.tables().items():  # exact: bit for bit; also skips pandas' row-by-row pass over categoricals (~17 s)
        pd.testing.assert_frame_equal(df, again.tables()[name], obj=name, check_exact=True)


def test_write_and_read_round_trip(tmp_path, raw):
    small = S.Sources(raw.customs.head(500), raw.accounts.head(300), raw.price_index, raw.education, raw.industry_rd,
                      raw.sigma, None, raw.hs_concordance, raw.rauch, province_vars=raw.province_vars)
    small.write(tmp_path)
    back = S.read_sources(tmp_path)
    assert back.destinations is None and set(back.tables()) == set(S.FILES) - {"destinations", "match"}
    for name, df in small.tables().items():
        expected, got = df.reset_index(drop=True), back.tables()[name]
        codes = [c for c in expected.columns if c in TEXT_CODES]  # codes and ids come back as text, whatever their type
        pd.testing.assert_frame_equal(got.drop(columns=codes), expected.drop(columns=codes), obj=name)
        for c in codes:
            assert isinstance(got[c].dtype, pd.CategoricalDtype), (name, c)
            assert got[c].astype(str).tolist() == expected[c].astype(str).tolist(), (name, c)


def test_read_csv_with_column_mapping(tmp_path, raw):
    small = S.Sources(raw.customs.head(200), raw.accounts.head(100), raw.price_index, raw.education, raw.industry_rd)
    small.write(tmp_path, format="csv")
    pd.read_csv(tmp_path / "accounts.csv").rename(columns={"firm_id": "id", "total_assets": "zczj"}).to_csv(
        tmp_path / "accounts.csv", index=False)
    back = S.read_sources(tmp_path, {"accounts": {"id": "firm_id", "zczj": "total_assets"}})
    np.testing.assert_allclose(back.accounts.total_assets, small.accounts.total_assets, rtol=1e-15)
    hs6 = quality.hs6_text(back.customs.hs6)  # CSV drops leading zeros; the measure restores them
    assert (hs6 == small.customs.hs6.astype(str).to_numpy()).all()


def test_reader_errors_name_the_problem(tmp_path, raw):
    with pytest.raises(DataValidationError, match="is not a folder"):
        S.read_sources(tmp_path / "nothere")
    raw.price_index.to_csv(tmp_path / "price_index.csv", index=False)
    with pytest.raises(DataValidationError, match=r"missing raw source file\(s\) customs, accounts, education, industry_rd"):
        S.read_sources(tmp_path)
    with pytest.raises(DataValidationError, match="unknown source"):
        S.read_sources(tmp_path, {"custom": {"a": "firm_id"}})
    S.Sources(raw.customs.head(10), raw.accounts.head(10), raw.price_index, raw.education, raw.industry_rd).write(tmp_path)
    with pytest.raises(DataValidationError, match="maps 'exporter', which the file does not have"):
        S.read_sources(tmp_path, {"customs": {"exporter": "party_id"}})


def test_source_params_are_checked():
    with pytest.raises(ValueError, match="unknown source parameter"):
        SourceParams.of({"flows_per_prodcut": 10})
