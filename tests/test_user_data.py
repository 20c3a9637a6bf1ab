"""Users' own panels: read in three formats, mapped, validated with messages that say what to fix."""

from pathlib import Path

import pandas as pd
import pytest

from eqexp.data.load import load
from eqexp.data.validate import DataValidationError
from eqexp.spec import DataSpec, SpecError

ROOT = Path(__file__).resolve().parents[1]
MAPPING = {"id": "firm_id", "yr": "year", "prov": "province", "tq": "quality", "mi": "market"}


def example() -> pd.DataFrame:
    return pd.read_csv(ROOT / "examples" / "panel.csv")


def spec_for(path: Path, tmp_path: Path, columns=MAPPING) -> DataSpec:
    return DataSpec(name="mine", source="panel", path=str(path), columns=columns, cache_dir=str(tmp_path / "cache"),
                    schema="export_quality")  # the study's rules apply where declared


@pytest.mark.parametrize("ext", ["csv", "parquet", "dta"])
def test_formats_load_to_the_same_panel(tmp_path, ext):
    df = example()
    path = tmp_path / f"panel.{ext}"
    {"csv": df.to_csv, "parquet": df.to_parquet, "dta": df.to_stata}[ext](path, **({"write_index": False} if ext == "dta" else {"index": False}))
    loaded = load(spec_for(path, tmp_path))
    assert len(loaded.panel) == len(df) and {"firm_id", "year", "quality", "market"} <= set(loaded.panel.columns)
    assert loaded.panel.quality.sum() == pytest.approx(df.tq.sum())
    again = load(spec_for(path, tmp_path))
    assert again.fingerprint == loaded.fingerprint  # served from the cache


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="data.path .*nothere.csv' does not exist"):
        load(spec_for(tmp_path / "nothere.csv", tmp_path))


def test_mapping_names_a_column_the_file_lacks(tmp_path):
    path = tmp_path / "p.csv"
    example().rename(columns={"tq": "quality_index"}).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"maps 'tq', which the file does not have.*quality_index"):
        load(spec_for(path, tmp_path))


def test_duplicate_firm_years_are_named(tmp_path):
    path = tmp_path / "p.csv"
    df = example()
    pd.concat([df, df.head(3)]).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"p.csv.*duplicate.*firm_id, year"):
        load(spec_for(path, tmp_path))


def test_wrong_type_is_named(tmp_path):
    path = tmp_path / "p.csv"
    df = example().astype({"tq": "object"})
    df.loc[df.index[4], "tq"] = "high"
    df.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"quality"):
        load(spec_for(path, tmp_path))


def test_impossible_quality(tmp_path):
    path = tmp_path / "p.csv"
    df = example()
    df.loc[df.index[:2], "tq"] = 1.7
    df.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"'quality' has 2 row\(s\) with values outside \[0, 1\]"):
        load(spec_for(path, tmp_path))


def test_unsupported_extension(tmp_path):
    path = tmp_path / "p.xlsx"
    path.write_text("x")
    with pytest.raises(DataValidationError, match="unsupported file type '.xlsx'"):
        load(spec_for(path, tmp_path))


def raw_copy(tmp_path: Path) -> Path:
    import shutil

    folder = tmp_path / "raw"
    shutil.copytree(ROOT / "examples" / "raw", folder)
    return folder


def raw_spec(folder: Path, tmp_path: Path, columns=None) -> DataSpec:
    return DataSpec(name="raw", source="raw", path=str(folder), columns=columns or {}, cache_dir=str(tmp_path / "cache"))


def test_raw_example_builds_every_measure(tmp_path):
    loaded = load(raw_spec(raw_copy(tmp_path), tmp_path))
    panel = loaded.panel
    assert {"quality", "market", "scale", "fic", "humancapital", "rd", "soe", "region"} <= set(panel.columns)
    assert panel.quality.between(0, 1).all() and not panel.duplicated(["firm_id", "year"]).any()
    steps = {s["step"] for s in loaded.build["steps"]}
    assert {"intermediaries", "unit_value_outliers"} <= steps  # the cleaning log comes with the panel


@pytest.mark.parametrize(("file", "column", "value", "rows", "message"), [
    ("accounts", "total_assets", -5.0, 3, r"accounts.*'total_assets' has 3 row\(s\) with values below 0"),
    ("price_index", "index", 0.0, 1, r"price_index.*'index'.*<= 0"),
])
def test_raw_impossible_values_named(tmp_path, file, column, value, rows, message):
    folder = raw_copy(tmp_path)
    table = pd.read_csv(folder / f"{file}.csv")
    table.loc[table.index[:rows], column] = value
    table.to_csv(folder / f"{file}.csv", index=False)
    with pytest.raises(DataValidationError, match=message):
        load(raw_spec(folder, tmp_path))


def test_raw_founding_after_year_is_dropped_and_logged(tmp_path):
    """Methods §1.4.10: ASIF rows founded after the observation year are dropped (and counted), not fatal."""
    folder = raw_copy(tmp_path)
    accounts = pd.read_csv(folder / "accounts.csv")
    clean = load(raw_spec(folder, tmp_path / "a"))
    before = {s["step"]: s["dropped"] for s in clean.build["steps"]}.get("founding_year", 0)
    accounts.loc[accounts.index[:4], "founding_year"] = accounts.year.iloc[:4] + 3
    accounts.to_csv(folder / "accounts.csv", index=False)
    after = {s["step"]: s["dropped"] for s in load(raw_spec(folder, tmp_path / "b")).build["steps"]}["founding_year"]
    assert after == before + 4


def test_raw_missing_column_suggests_mapping(tmp_path):
    folder = raw_copy(tmp_path)
    accounts = pd.read_csv(folder / "accounts.csv").rename(columns={"total_assets": "TotalAssets"})
    accounts.to_csv(folder / "accounts.csv", index=False)
    with pytest.raises(DataValidationError, match=r"total_assets.*TotalAssets"):
        load(raw_spec(folder, tmp_path))
