import numpy as np
import pandas as pd
import pytest

from eqexp.data import validate as V
from eqexp.data.validate import DataValidationError
from eqexp.steps import drop_rows


def panel(n=8) -> pd.DataFrame:
    return pd.DataFrame({"firm_id": np.arange(n) // 2, "year": 2004 + np.arange(n) % 2, "province": 11,
                         "quality": np.linspace(0, 1, n), "market": 4.0, "total_assets": 1000.0,
                         "employment": 50, "founding_year": 2000})


def test_valid_panel_passes():
    V.validate(panel(), V.PANEL, "panel.parquet")


def test_missing_column_names_file_and_mapping():
    df = panel().rename(columns={"total_assets": "TotalAssets"}).drop(columns="market")
    with pytest.raises(DataValidationError) as e:
        V.require_columns(df, ["firm_id", "total_assets", "market"], "asif.dta")
    msg = str(e.value)
    assert msg.startswith("asif.dta: missing required column(s): total_assets, market.")
    assert "map your column with data.columns: {TotalAssets: total_assets} (did you mean 'TotalAssets'?)" in msg
    assert "data.columns: {your_name: market}" in msg


def test_types_report_column_count_examples_and_fix():
    df = panel().assign(total_assets=["1,000", "2000", "n/a", "abc", None, "x", "y", "z"])
    with pytest.raises(DataValidationError) as e:
        V.check_types(df, {"total_assets": "numeric", "year": "integer"}, "asif.csv")
    msg = str(e.value)
    assert "asif.csv: column 'total_assets' should be numeric but 6 row(s) are not" in msg
    assert "1,000" in msg and "thousands separators" in msg
    examples = msg.split("examples:\n")[1].split("\n  Fix")[0].splitlines()
    assert len(examples) == 1 + 5 and "firm_id" in examples[0]  # a header and at most five rows


def test_code_and_integer_kinds():
    df = pd.DataFrame({"hs6": ["847130", "8471.30", 847130], "year": [2004, 2004.5, "2005"]})
    with pytest.raises(DataValidationError) as e:
        V.check_types(df, {"hs6": "code", "year": "integer"}, "customs.csv")
    msg = str(e.value)
    assert "column 'hs6' should be code but 1 row(s)" in msg and "leading zeros" in msg
    assert "column 'year' should be integer but 1 row(s)" in msg
    V.check_types(pd.DataFrame({"hs6": [847130, 10121], "name": ["a", None]}), {"hs6": "code", "name": "string"}, "x")


def test_duplicate_keys():
    df = pd.concat([panel(), panel().iloc[[0, 1, 1]]])
    with pytest.raises(DataValidationError) as e:
        V.check_unique_keys(df, ["firm_id", "year"], "panel.csv")
    msg = str(e.value)
    assert "panel.csv: 5 row(s) share 2 duplicated key(s) (firm_id, year)" in msg and "Fix: keep one row per" in msg


@pytest.mark.parametrize("column, value, text", [
    ("total_assets", -5.0, "column 'total_assets' has 1 row(s) with values below 0"),
    ("founding_year", 2010, "column 'founding_year' has 8 row(s) with 'founding_year' after 'year'"),
    ("quality", 1.2, "column 'quality' has 1 row(s) with values outside [0, 1]"),
])
def test_panel_ranges(column, value, text):
    df = panel()
    if column == "founding_year":
        df[column] = value
    else:
        df.loc[3, column] = value
    with pytest.raises(DataValidationError) as e:
        V.validate(df, V.PANEL, "my_panel.parquet")
    assert str(e.value).startswith("my_panel.parquet: ") and text in str(e.value) and "Fix:" in str(e.value)


def test_all_range_failures_reported_together():
    df = panel()
    df.loc[0, "quality"], df.loc[1, "total_assets"] = -0.1, -1.0
    with pytest.raises(DataValidationError) as e:
        V.check_ranges(df, V.PANEL["rules"], "p.csv")
    assert "'quality'" in str(e.value) and "'total_assets'" in str(e.value)


def test_price_index_rules():
    df = pd.DataFrame({"province": [11, 12], "year": 2005, "category": "grain", "index": [0.0, 101.2]})
    with pytest.raises(DataValidationError, match=r"(?s)cpi.csv: column 'index' has 1 row\(s\) with values <= 0.*not 0"):
        V.validate(df, V.PRICE_INDEX, "cpi.csv")


def test_drop_rows_records_the_step():
    log = []
    out = drop_rows(panel(), panel()["quality"] > 0.5, "demo", "quality above one half", log)
    assert len(out) == 4
    assert log == [{"step": "demo", "rows_in": 8, "dropped": 4, "reason": "quality above one half", "rows_out": 4}]
    drop_rows(panel(), np.zeros(8, bool), "demo", "nothing", None)  # no log kept: no error
