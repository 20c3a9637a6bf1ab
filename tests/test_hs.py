"""HS vintages (methods §1.4 step 3): hand-made conversions, the one-to-many rules, named errors, and the
synthetic world, whose records converted back must carry the codes of the same world without vintages."""

import numpy as np
import pandas as pd
import pytest

from eqexp.data.synthetic.params import SourceParams
from eqexp.data.synthetic.vintages import with_vintages
from eqexp.data.validate import DataValidationError
from eqexp.measures import hs

TABLE = pd.DataFrame({  # HS2007 → HS2002, as UNSD lists it: 847130 unchanged, 847141 renumbered, 850440 merged
    "from_vintage": [2007, 2007, 2007, 2007, 2012],
    "from_hs6": ["847130", "847141", "850440", "850440", "847130"],
    "to_hs6": ["847130", "847140", "850440", "850450", "847130"],
})


def records() -> pd.DataFrame:
    return pd.DataFrame({"hs6": ["847130", "847141", "850440", "999999", "847140", "847130", None],
                         "year": [2008, 2009, 2010, 2011, 2005, 2013, 2008]})


def test_vintage_of_year_follows_china_customs():
    years = [2000, 2001, 2002, 2006, 2007, 2011, 2012, 2016, 2017]
    assert hs.vintage_of_year(years).tolist() == [1996, 1996, 2002, 2002, 2007, 2007, 2012, 2012, 2017]


def test_drop_rule_by_hand():
    log = []
    out = hs.convert(records(), TABLE, target=2002, one_to_many="drop", log=log)
    # 850440 (one-to-many) and 999999 (not in the table) go; HS2002 and missing codes pass as they are
    assert out.index.tolist() == [0, 1, 4, 5, 6]
    assert out["hs6"].astype(object).tolist()[:4] == ["847130", "847140", "847140", "847130"]
    assert pd.isna(out["hs6"].iloc[4])
    steps = {s["step"]: s["dropped"] for s in log}
    assert steps == {"hs_vintage_not_in_table": 0, "hs_converted": 0, "hs_one_to_many_dropped": 1, "hs_not_in_table": 1}


def test_first_rule_keeps_the_first_listed_target():
    out = hs.convert(records(), TABLE, one_to_many="first")
    assert out.loc[2, "hs6"] == "850440"
    reordered = TABLE.iloc[[0, 1, 3, 2, 4]]  # "first" is the table's order, as Stata's duplicates drop
    assert hs.convert(records(), reordered, one_to_many="first").loc[2, "hs6"] == "850450"


def test_family_rule_makes_linked_codes_one_product_in_every_year():
    assert hs.families(TABLE).to_dict() == {"850440": "850440", "850450": "850440"}
    rec = pd.concat([records(), pd.DataFrame({"hs6": ["850450"], "year": [2004]})], ignore_index=True)
    out = hs.convert(rec, TABLE, one_to_many="family")
    assert out.loc[2, "hs6"] == "850440" and out.loc[7, "hs6"] == "850440"  # HS2007 and HS2002 alike
    assert len(out) == len(rec) - 1  # only the code missing from the table goes


def test_an_explicit_vintage_column_wins_and_uncovered_vintages_are_dropped():
    rec = records().assign(hs_vintage=[2007, 2007, 2007, 2007, 2002, 2002, 2007])
    out = hs.convert(rec, TABLE)
    assert out.loc[5, "hs6"] == "847130"  # declared HS2002: kept as it is
    log = []
    hs.convert(records().assign(year=1999), TABLE, log=log)  # HS1996: the table has no 1996 rows
    assert log[0]["step"] == "hs_vintage_not_in_table" and log[0]["dropped"] == 6


def test_table_errors_name_column_and_fix():
    with pytest.raises(DataValidationError, match=r"hs_concordance: missing required column\(s\): to_hs6"):
        hs.check_table(TABLE.drop(columns="to_hs6"))
    with pytest.raises(DataValidationError, match=r"column 'from_vintage' has 1 row\(s\) with values not in"):
        hs.check_table(TABLE.assign(from_vintage=[2007, 2007, 2007, 2007, 2010]))
    codes = hs.check_table(TABLE.assign(from_hs6=[847130, 847141, 850440, 850440, 10121]))
    assert codes["from_hs6"].iloc[-1] == "010121"  # leading zeros restored


@pytest.fixture(scope="module")
def recoded(tidy):
    customs = tidy.customs.assign(hs6=tidy.customs["hs6"].astype(str).astype("category"))
    return customs, *with_vintages(np.random.default_rng(7), customs, SourceParams())


def test_synthetic_codes_of_later_vintages_differ_and_the_table_has_one_to_many_codes(recoded):
    customs, out, table, info = recoded
    later = out["hs_vintage"].to_numpy() > 2002
    changed = out["hs6"].astype(str).to_numpy() != customs["hs6"].astype(str).to_numpy()
    assert changed.any() and not changed[~later].any()  # HS2002 years keep their codes
    assert info["one_to_many_codes"] > 0 and set(table["from_vintage"]) == {2007, 2012}


def test_drop_rule_gives_back_every_kept_record_its_true_code(recoded):
    customs, out, table, _ = recoded
    back = hs.convert(out.assign(hs6=out["hs6"].astype(str)), table, one_to_many="drop")
    truth = customs["hs6"].astype(str).reindex(back.index)
    assert (back["hs6"].astype(str) == truth).all() and len(back) < len(customs)


def test_first_rule_mislabels_only_the_records_of_merged_codes(recoded):
    customs, out, table, _ = recoded
    back = hs.convert(out.assign(hs6=out["hs6"].astype(str)), table, one_to_many="first")
    assert len(back) == len(customs)
    wrong = back["hs6"].astype(str).to_numpy() != customs["hs6"].astype(str).to_numpy()
    ambiguous = table[table.duplicated(["from_vintage", "from_hs6"], keep=False)]
    pairs = pd.MultiIndex.from_arrays([out["hs_vintage"], out["hs6"].astype(str)])
    in_merged = pairs.isin(pd.MultiIndex.from_frame(ambiguous[["from_vintage", "from_hs6"]]))
    assert wrong.any() and not (wrong & ~in_merged).any()
