"""Customs–ASIF matching (Yu 2015): name normalisation and keys by hand, ambiguity, the user's match file,
and precision and recall against the synthetic world's true key (issue 13: both ≥ 0.97)."""

import pandas as pd
import pytest

from eqexp.build import build
from eqexp.data.synthetic import scores
from eqexp.data.validate import DataValidationError
from eqexp.measures import matching as M


def test_names_normalise_width_brackets_spaces_and_suffixes():
    names = pd.Series(["（浙江）宏达昌机械有限责任公司", "浙江 宏达昌机械有限公司", "(浙江)宏达昌机械有限公司",
                       "浙江宏达昌机械股份有限公司", "浙江宏达昌机械股份公司", None])
    out = M.normalise_name(names)
    assert out.iloc[:3].tolist() == ["浙江宏达昌机械有限公司"] * 3
    assert out.iloc[3] == out.iloc[4] == "浙江宏达昌机械股份公司"
    assert pd.isna(out.iloc[5])
    assert M.normalise_name(pd.Series(["ＡＢＣ　有限公司"])).iloc[0] == "ABC有限公司"  # full-width Latin and space


def test_phone_key_is_zip_and_last_seven_digits():
    key = M.phone_key(pd.Series(["310012", 51234, "310012", "310012"]),
                      pd.Series(["0571-86912345", "(0571)86912345", 57186912345, "12345"]))
    assert key.iloc[0] == "3100126912345" and key.iloc[1] == "0512346912345"  # the zip read as a number regains its 0
    assert key.iloc[2] == "3100126912345" and pd.isna(key.iloc[3])  # too short to be a telephone


def asif() -> pd.DataFrame:
    return pd.DataFrame({"firm_id": [1, 2, 3, 4], "year": 2005,
                         "firm_name": ["浙江宏达昌机械有限公司", "江苏永安电子有限公司", "同名有限公司", "同名有限公司"],
                         "zip": ["310012", "210001", "200001", "200002"],
                         "phone": ["0571-86912345", "025-1234567", "021-7654321", "021-7654322"]})


def test_steps_in_order_ambiguity_and_rates():
    parties = pd.DataFrame({"party_id": ["a", "b", "c", "d"], "year": 2005,
                            "firm_name": ["(浙江)宏达昌机械有限责任公司", "永安电子", "同名有限公司", "外资有限公司"],
                            "zip": ["310012", "210001", "200001", "999999"],
                            "phone": [None, "02501234567", "7654321", "7654321"]})
    log = []
    found, rates = M.match_parties(parties, asif(), log=log)
    assert found.set_index("party_id")[["firm_id", "step"]].to_dict("index") == {
        "a": {"firm_id": 1, "step": "name"},  # the name, once normalised
        "b": {"firm_id": 2, "step": "zip_phone"},  # an abbreviated name: zip + telephone
        "c": {"firm_id": 3, "step": "zip_phone"}}  # two ASIF firms share the name: it matches neither; the phone does
    assert rates["rate"].tolist() == [0.25, 0.75]  # cumulative share of the year's parties
    assert [s["step"] for s in log] == ["match_name", "match_zip_phone"]


def test_a_step_without_its_columns_is_skipped_and_said():
    parties = pd.DataFrame({"party_id": ["a"], "year": 2005, "firm_name": ["浙江宏达昌机械有限公司"]})
    log = []
    found, _ = M.match_parties(parties, asif(), log=log)
    assert found["firm_id"].tolist() == [1] and "skipped: no zip, phone column" in log[-1]["reason"]


def test_the_synthetic_match_meets_precision_and_recall(raw, built):
    s = scores(raw.truth, built.match, built.firm_of)
    assert s["match_precision"] >= 0.97 and s["match_recall"] >= 0.97, s  # measured 0.998 and 0.986
    rates = built.tables["match_rates"]
    assert set(rates["step"]) == {"name", "zip_phone"} and (rates.groupby("year")["rate"].diff().dropna() > 0).all()
    assert built.tables["unmatched_exports"]["value_share"].between(0.01, 0.3).all()  # exporters outside the ASIF


def test_the_users_match_file_replaces_the_match(raw):
    from eqexp.data.sources import Sources

    truth = raw.truth["parties"]
    given = Sources(**{**raw.tables(), "match": truth.assign(party_id=truth["party_id"].astype(str))})
    built = build(given)
    assert set(built.match["step"]) == {"table"}
    s = scores(raw.truth, built.match, built.firm_of)
    assert s["match_precision"] == s["match_recall"] == 1.0
    with pytest.raises(DataValidationError, match=r"match: 2 row\(s\) share 1 duplicated key"):
        build(Sources(**{**raw.tables(), "match": pd.concat([truth.head(1), truth.head(1)])}))
