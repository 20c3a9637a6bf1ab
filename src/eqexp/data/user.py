"""Users' own files: read Parquet, CSV or Stata .dta, rename their columns to ours, validate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from eqexp.data.validate import PANEL, DataValidationError, validate
from eqexp.spec import DataSpec

READERS = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".dta": pd.read_stata}


def read_file(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read one file and rename `columns` (their name -> ours); unknown extensions are an error."""
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataValidationError(f"{path}: unsupported file type '{path.suffix}'. Use one of {', '.join(READERS)}.")
    df = reader(path)
    absent = [theirs for theirs in columns if theirs not in df.columns]
    if absent:
        raise DataValidationError(
            f"{path}: data.columns maps {', '.join(map(repr, absent))}, which the file does not have. "
            f"Its columns are: {', '.join(map(str, df.columns))}."
        )
    return df.rename(columns=columns)


def read_panel(spec: DataSpec) -> tuple[pd.DataFrame, list[dict]]:
    """A ready analysis panel: validated (columns, types, unique firm-years, ranges), nothing built."""
    path = Path(spec.path or "")
    df = read_file(path, spec.columns)
    validate(df, PANEL, str(path))
    return df.sort_values(["firm_id", "year"], ignore_index=True), [
        {"step": "read", "rows_in": len(df), "dropped": 0, "reason": "", "rows_out": len(df), "file": str(path)}
    ]
