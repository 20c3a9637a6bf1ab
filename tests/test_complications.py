"""The synthetic world's complications of the licensed files (issue 13): each laid on from its own random
stream, so that switching it off leaves the rest of the world as it was; each with the truth it hides."""

import numpy as np
import pandas as pd
import pytest

from conftest import TIDY
from eqexp.build import build
from eqexp.data.load import load
from eqexp.data.synthetic.months import monthly
from eqexp.data.synthetic.params import RESTRUCTURED_ID0, SourceParams
from eqexp.data.validate import DataValidationError
from eqexp.measures import quality
from eqexp.measures.matching import normalise_name
from eqexp.spec import DataSpec


def test_switching_complications_off_leaves_the_rest_of_the_world(raw, tidy):
    for name in ("price_index", "education", "industry_rd", "sigma", "destinations", "rauch"):
        pd.testing.assert_frame_equal(getattr(raw, name), getattr(tidy, name), obj=name)
    numbers = ["year", "total_assets", "liabilities", "profit", "inventory", "sales", "founding_year", "industry"]
    pd.testing.assert_frame_equal(raw.accounts[numbers], tidy.accounts[numbers])
    by_year = [c.groupby("year")["value_usd"].sum() for c in (raw.customs, tidy.customs)]
    np.testing.assert_allclose(*by_year, rtol=1e-12)  # the same flows, in other records and codes


def test_monthly_records_sum_back_to_the_yearly_ones(tidy):
    months, info = monthly(np.random.default_rng(3), tidy.customs, SourceParams())
    assert months["month"].between(1, 12).all() and info["monthly_records"] > 1.5 * len(tidy.customs)
    keys = ["firm_id", "hs6", "destination", "year"]
    a, b = (quality.aggregate_flows(df.assign(hs6=df["hs6"].astype(str)).dropna(subset=["destination"]))
            .sort_values(keys, ignore_index=True) for df in (months, tidy.customs))
    pd.testing.assert_frame_equal(a[keys], b[keys])
    np.testing.assert_allclose(a[["value_usd", "quantity"]], b[["value_usd", "quantity"]], rtol=1e-12)


def test_customs_names_phones_and_zips_are_written_as_in_real_files(raw):
    truth = raw.truth["parties"]
    c = raw.customs.drop_duplicates(["party_id", "year"]).merge(truth.astype({"party_id": "category"}), on=["party_id", "year"])
    asif = raw.accounts.set_index(["firm_id", "year"])
    names = asif["firm_name"].reindex(pd.MultiIndex.from_frame(c[["firm_id", "year"]])).to_numpy()
    written = c["firm_name"].astype(str).to_numpy()
    differ = written != names
    assert 0.3 < differ.mean() < 0.6  # realistic variants
    same = normalise_name(pd.Series(written)).to_numpy() == normalise_name(pd.Series(names)).to_numpy()
    assert 0.95 < same.mean() < 1  # normalisation recovers all but the abbreviated names
    phones = c["phone"].astype(str)
    assert phones.str.startswith("(").any() and phones.str.fullmatch(r"\d{8}").any() and c["phone"].isna().any()
    assert c["zip"].astype(str).str.fullmatch(r"\d{6}").all() and c["party_id"].astype(str).str.fullmatch(r"\d{10}").all()


def test_restructured_firms_carry_new_ids_from_their_restructuring_year(raw, tidy):
    firms = raw.truth["firms"]
    moved = firms["firm_id"] != firms["world_firm"]
    assert moved.sum() == raw.info["restructuring"]["rows_re_ided"] > 0
    assert (firms.loc[moved, "firm_id"] > RESTRUCTURED_ID0).all()
    first_new = firms[moved].groupby("world_firm")["year"].min()
    later = firms[firms["world_firm"].isin(first_new.index)]
    assert (later["year"] >= later["world_firm"].map(first_new)).eq(later["firm_id"] != later["world_firm"]).all()
    kept = ["founding_year", "industry", "city"]  # what the last linking step relies on
    pd.testing.assert_frame_equal(raw.accounts[kept], tidy.accounts[kept])


@pytest.fixture(scope="module")
def tiny_off(tmp_path_factory):
    params = {"n_firms": 300, "n_obs": 1500, "seed": 20240101, "sources": TIDY}
    return load(DataSpec(name="tiny", source="synthetic", params=params, cache_dir=str(tmp_path_factory.mktemp("c"))))


def test_complications_are_switched_off_in_data_params(tiny_off):
    steps = {s["step"]: s for s in tiny_off.build["steps"]}
    assert "match_ids" in steps and "hs_as_given" in steps  # customs keyed by the ASIF id, one vintage
    assert tiny_off.build["truth_scores"]["link_recall"] == 1.0 and "match_precision" not in tiny_off.build["truth_scores"]


def test_an_empty_panel_says_why(raw):
    from eqexp.data.sources import Sources

    wrong = raw.customs.rename(columns={"party_id": "firm_id"})  # customs codes taken for ASIF ids
    with pytest.raises(DataValidationError, match="The built panel is empty: step 'unmatched_exports'"):
        build(Sources(**{**raw.tables(), "customs": wrong}))


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: {"customs": s.customs.drop(columns="party_id")}, "customs: no exporter column. Name it party_id"),
    (lambda s: {"customs": s.customs.assign(month=s.customs["month"].where(s.customs.index > 0, 13))},
     r"customs: column 'month' has 1 row\(s\) with values outside \[1, 12\]"),
    (lambda s: {"customs": s.customs.assign(hs_vintage=2005)}, "column 'hs_vintage' has .* values not in"),
    (lambda s: {"hs_concordance": s.hs_concordance.drop(columns="from_vintage")},
     r"hs_concordance: missing required column\(s\): from_vintage"),
    (lambda s: {"rauch": s.rauch.assign(lib="x")}, "rauch: column 'lib' has .* values not in {n, r, w}"),
    (lambda s: {"rauch": None}, "data.build.rauch = liberal needs the rauch file"),
    (lambda s: {"match": s.truth["parties"].drop(columns="firm_id")}, r"match: missing required column\(s\): firm_id"),
])
def test_new_inputs_fail_with_named_errors_before_any_stage(raw, change, message):
    from eqexp.data.sources import Sources

    with pytest.raises(DataValidationError, match=message):
        build(Sources(**{**raw.tables(), **change(raw)}), {"rauch": "liberal"})
