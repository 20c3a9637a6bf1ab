"""Raw files as the licensed data deliver them: many files per source, changing names, encodings, codes as stored.

Small hand-made files (a few rows each) whose right reading is known; the whole panel from the
licensed layout is tested against the one-file folder in test_licensed.py.
"""

import numpy as np
import pandas as pd
import pytest

from eqexp.data import sources as S
from eqexp.data.readers import SAMPLE_BYTES, detect_encoding, read_table
from eqexp.data.validate import DataValidationError

CUSTOMS_MAP = {"企业编码": "party_id", "企业名称": "firm_name", "邮政编码": "zip", "电话": "phone", "商品编码": "hs8",
               "年月": "year_month", "目的国": "destination", "贸易方式": "trade_mode", "计量单位": "unit", "数量": "quantity",
               "美元": "value_usd"}


def licensed_customs(year: int, n: int = 4) -> pd.DataFrame:
    """Customs records as the licensed CSVs hold them: Chinese headers, HS8 stored as numbers, YYYYMM."""
    return pd.DataFrame({
        "企业编码": [f"{1101000000 + i}" for i in range(n)],
        "企业名称": [f"北京{i}号机械有限公司" for i in range(n)],
        "邮政编码": ["010010"] * n,  # Inner Mongolia: a leading zero
        "电话": ["0471-6612345"] * n,
        "商品编码": [2011000 + i for i in range(n)],  # 02011000.. read as numbers
        "年月": [year * 100 + 1 + i % 12 for i in range(n)],
        "目的国": ["JPN", "USA", "KOR", "DEU"][:n],
        "贸易方式": ["10"] * n,
        "计量单位": ["035"] * n,
        "数量": np.arange(1.0, n + 1),
        "美元": np.arange(10.0, 10.0 * (n + 1), 10.0),
    })


def steps(log, name):
    return [s for s in log if s.step == name]


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("encoding, detected", [("gb18030", "gb18030"), ("gbk", "gb18030"), ("utf-8-sig", "utf-8-sig"),
                                                ("utf-8", "utf-8")])
def test_csv_encodings_are_detected_and_read(tmp_path, encoding, detected):
    path = tmp_path / "customs_2004.csv"
    licensed_customs(2004).to_csv(path, index=False, encoding=encoding)
    assert detect_encoding(path) == detected
    df, read = read_table(path, CUSTOMS_MAP)
    assert read.encoding == detected and read.rows == 4
    assert df["firm_name"].astype(str).tolist()[0] == "北京0号机械有限公司"
    assert df["zip"].astype(str).eq("010010").all() and df["phone"].astype(str).eq("0471-6612345").all()
    assert df["unit"].astype(str).eq("035").all()  # codes kept as text from the first read
    assert "hs8" in df.columns and df["hs8"].astype(str).tolist()[:2] == ["2011000", "2011001"]


def test_encoding_override_and_undecodable_bytes_name_file_and_line(tmp_path):
    path = tmp_path / "customs_2005.csv"
    licensed_customs(2005).to_csv(path, index=False, encoding="gb18030")
    with pytest.raises(DataValidationError, match=r"customs_2005.csv: line 1 has bytes that are not utf-8"):
        read_table(path, CUSTOMS_MAP, encoding="utf-8")  # data.encoding overrides the detection
    # UTF-8 for the first MiB, then a GBK name on line 3 of the rest: found by line, not guessed away
    head = "a,b\n" + "x,1\n" * (SAMPLE_BYTES // 4 + 10)
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(head.encode() + "上海,2\n".encode("gbk"))
    assert detect_encoding(mixed) == "utf-8"
    line = head.count("\n") + 1
    with pytest.raises(DataValidationError, match=rf"mixed.csv: line {line} has bytes that are not utf-8"):
        read_table(mixed, {})
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"a,b\n\xff\xff\xff,1\n")
    with pytest.raises(DataValidationError, match=r"junk.csv: line 2 is neither UTF-8 nor GB18030"):
        read_table(junk, {})


# --------------------------------------------------------------------------- codes as researchers have them


def test_hs8_numbers_are_padded_and_cut_and_year_month_split(tmp_path):
    (tmp_path / "customs").mkdir()
    frame = licensed_customs(2004)
    frame.loc[3, "商品编码"] = 8471300010  # a 10-digit code: cut, and counted
    frame.to_csv(tmp_path / "customs" / "2004.csv", index=False, encoding="gb18030")
    df, log = S.readers.read_source("customs", [tmp_path / "customs" / "2004.csv"], CUSTOMS_MAP, None, tmp_path)
    assert df["hs6"].tolist() == ["020110", "020110", "020110", "847130"]
    assert "hs8" not in df.columns and "year_month" not in df.columns
    assert df["year"].tolist() == [2004] * 4 and df["month"].tolist() == [1, 2, 3, 4]
    (cut,) = steps(log, "hs8_to_hs6")
    assert cut.changed == 3 and "4 record(s) whose code was not 8 digits: 3 shorter" in cut.reason and "1 longer" in cut.reason
    frame.loc[0, "年月"] = 200413
    frame.to_csv(tmp_path / "customs" / "2004.csv", index=False, encoding="gb18030")
    with pytest.raises(DataValidationError, match=r"'year_month' has 1 value\(s\) that are not YYYYMM .*200413"):
        S.readers.read_source("customs", [tmp_path / "customs" / "2004.csv"], CUSTOMS_MAP, None, tmp_path)


# --------------------------------------------------------------------------- many files, changing names


def asif_year(year: int, code_name: str, sales_name: str, n: int = 3) -> pd.DataFrame:
    out = pd.DataFrame({
        code_name: [f"0{i}1234567" for i in range(n)],  # organisation codes with a leading zero
        "年份": [year] * n, sales_name: np.arange(n) * 10.0 + year,
        "登记注册类型": [110, 173, 310][:n],
    })
    return out


ASIF_MAP = {"法人代码": "firm_id", "组织机构代码": "firm_id", "年份": "year", "主营业务收入": "sales", "营业收入": "sales",
            "登记注册类型": "registration_type", "本年折旧": "current_depreciation"}


def write_asif(folder, years):
    folder.mkdir(exist_ok=True)
    for year in years:
        code = "法人代码" if year < 2008 else "组织机构代码"
        df = asif_year(year, code, "主营业务收入" if year < 2009 else "营业收入")
        if year != 2009:  # one year lacks a variable
            df["本年折旧"] = 1.5
        df.to_stata(folder / f"asif_{year}.dta", write_index=False, version=118 if year % 2 else 119,
                    value_labels={"登记注册类型": {110: "国有企业", 173: "私营有限责任公司", 310: "中外合资经营企业"}})


def test_many_files_per_source_with_changing_names(tmp_path):
    write_asif(tmp_path / "asif", [2009, 2007, 2008])
    df, log = S.readers.read_source("asif", sorted((tmp_path / "asif").glob("*.dta")), ASIF_MAP, None, tmp_path)
    assert df["year"].tolist() == [2007] * 3 + [2008] * 3 + [2009] * 3  # files in their sorted order
    assert df["firm_id"].astype(str).tolist()[:3] == ["001234567", "011234567", "021234567"]  # 法人代码, then 组织机构代码
    np.testing.assert_array_equal(df["sales"], [2007, 2017, 2027, 2008, 2018, 2028, 2009, 2019, 2029])
    assert df["registration_type"].astype(str).tolist()[:3] == ["110", "173", "310"]  # the codes, not their labels
    assert df["current_depreciation"].isna().tolist() == [False] * 6 + [True] * 3  # missing in 2009, never filled
    (absent,) = steps(log, "absent_current_depreciation")
    assert "absent from 1 of 3 file(s) (asif/asif_2009.dta): missing in their 3 rows" in absent.reason
    files = steps(log, "read_file")
    assert [s.rows_in for s in files] == [3, 3, 3] and "asif/asif_2007.dta, 3 rows, read as stata" in files[0].reason


def test_many_to_one_map_errors(tmp_path):
    both = asif_year(2008, "法人代码", "营业收入").assign(组织机构代码="x")
    both.to_stata(tmp_path / "both.dta", write_index=False, version=118)
    with pytest.raises(DataValidationError, match=r"both.dta: columns '法人代码', '组织机构代码' are all mapped to 'firm_id'"):
        read_table(tmp_path / "both.dta", ASIF_MAP)
    # a required column none of whose candidates is in the file: the file and the candidates named
    asif_year(2008, "代码", "营业收入").to_stata(tmp_path / "asif_2008.dta", write_index=False, version=118)
    with pytest.raises(DataValidationError, match=r"asif_2008.dta: no column for 'firm_id', which accounts needs "
                                                  r"\(firm_id\); data.columns.accounts maps '法人代码', '组织机构代码' to it"):
        S.readers.read_source("accounts", [tmp_path / "asif_2008.dta"], ASIF_MAP, None, tmp_path)


def test_folder_with_globs(tmp_path, raw):
    small = S.Sources(raw.customs, raw.accounts.head(200), raw.price_index, raw.education, raw.industry_rd)
    small.write(tmp_path)
    (tmp_path / "customs.parquet").unlink()
    (tmp_path / "customs").mkdir()
    years = sorted(raw.customs["year"].unique())
    for year in reversed(years):
        raw.customs[raw.customs["year"] == year].to_csv(tmp_path / "customs" / f"customs_{year}.csv", index=False)
    back = S.read_sources(tmp_path, files={"customs": "customs/*.csv"})
    expected = pd.concat([raw.customs[raw.customs["year"] == y] for y in years], ignore_index=True)
    assert back.customs["party_id"].astype(str).tolist() == expected["party_id"].astype(str).tolist()
    np.testing.assert_array_equal(back.customs["value_usd"], expected["value_usd"])
    files = [s for s in back.info["read"] if s.step == "read_file" and s.reason.startswith("customs")]
    assert [s.rows_in for s in files] == [int((raw.customs["year"] == y).sum()) for y in years]
    assert "customs/customs_2004.csv" in files[0].reason and "utf-8" in files[0].reason
    with pytest.raises(DataValidationError, match=r"data.files.customs = \['customs/\*.dta'\] matches no file"):
        S.read_sources(tmp_path, files={"customs": "customs/*.dta"})
    with pytest.raises(DataValidationError, match="data.files names unknown source"):
        S.read_sources(tmp_path, files={"custom": "customs/*.csv"})


def test_old_stata_formats_hold_gbk_text(tmp_path):
    """Before format 118 a .dta holds the writer's code page: an ASIF written by a Chinese Stata 10-12 (format 114)
    has GBK names and values, which pandas alone reads as Latin-1 mojibake."""
    latin = "企业名称".encode("gbk").decode("latin-1")
    frame = pd.DataFrame({"fdcode": ["001234567", "011234567"], "year": [2004, 2004],
                          "name_gbk": ["北京机械有限公司".encode("gbk").decode("latin-1"), "ABC Ltd"]})
    path = tmp_path / "asif_2004.dta"
    frame.to_stata(path, version=114, write_index=False)
    raw = path.read_bytes()
    assert raw.count(b"fdcode\x00") == 1 and raw.count(b"name_gbk\x00") == 1
    # the variable names as Stata 12 in a Chinese locale writes them: GBK bytes in the name fields
    path.write_bytes(raw.replace(b"fdcode\x00\x00\x00", "法人代码".encode("gbk") + b"\x00").replace(
        b"name_gbk\x00", "企业名称".encode("gbk") + b"\x00"))
    assert pd.read_stata(path).columns[2] == latin  # what pandas makes of it
    df, read = read_table(path, {"法人代码": "firm_id", "企业名称": "firm_name"})
    assert read.encoding == "stata 114, text as gb18030"
    assert df["firm_name"].tolist() == ["北京机械有限公司", "ABC Ltd"]
    assert df["firm_id"].astype(str).tolist() == ["001234567", "011234567"]
    kept, read = read_table(path, {}, encoding="latin-1")  # data.encoding overrides: Latin-1 as pandas reads it
    assert read.encoding == "stata 114, text as latin-1" and kept.columns[2] == latin
