"""Users' ready panels: one file (Parquet, CSV or Stata .dta), columns renamed to ours, validated."""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from eqexp.data.sources import read_file
from eqexp.data.validate import SCHEMAS, DataValidationError, check_ranges, check_types, check_unique_keys, user_rules, validate
from eqexp.spec import DataSpec
from eqexp.steps import Step


def read_panel(spec: DataSpec) -> tuple[pd.DataFrame, list[Step]]:
    """A ready analysis panel, nothing built: its unit and period present, integer periods, one row
    per (unit, period); the rules of its declared schema and its own rules. Which other columns
    a job needs, its spec says (`eqexp.spec.check_variables`)."""
    path = Path(spec.path or "")
    if path.is_file() and path.stat().st_size == 0:
        raise DataValidationError(f"{path} is empty (0 bytes). Point data.path at the panel file itself, or write the panel "
                                  "into it again: a header row with the column names, then one row per unit and period.")
    try:
        df = read_file(path, spec.columns)
    except DataValidationError:
        raise
    except ValueError as err:  # pandas' and Arrow's readers raise ValueError subclasses for a file they cannot parse
        kind = {".csv": "CSV", ".parquet": "Parquet", ".dta": "Stata"}.get(path.suffix.lower(), path.suffix)
        raise DataValidationError(f"{path} cannot be read as a {kind} file ({type(err).__name__}: {str(err).splitlines()[0][:300]}). "
                                  "Check that it is the panel itself and that its name ends in the extension of its format"
                                  + ("; a CSV file must be UTF-8 text." if kind == "CSV" else ".")) from None
    if df.empty:
        raise DataValidationError(f"{path} has its columns ({', '.join(map(str, df.columns))}) but no rows. "
                                  "Write the panel's rows into it, one per unit and period.")
    keys = (spec.id, spec.time)
    for key, what in zip(("id", "time"), ("unit (firm, worker, country, ...)", "period (year, quarter, ...)")):
        column = getattr(spec, key)
        if column not in df.columns:
            near = difflib.get_close_matches(column, [str(c) for c in df.columns], n=1, cutoff=0.3)
            raise DataValidationError(
                f"{path}: data.{key} is '{column}', which is not a column of the file. Set data.{key} to the column "
                f"that holds the panel's {what}" + (f", e.g. data.{key}: {near[0]}" if near else "")
                + f". Columns found: {', '.join(map(str, df.columns))}.")
    check_types(df, {spec.time: "integer"}, str(path))
    check_unique_keys(df, keys, str(path))
    if spec.schema:
        validate(df, SCHEMAS[spec.schema], str(path))
    check_ranges(df, user_rules(spec.rules), str(path))
    return df.sort_values(list(keys), ignore_index=True), [Step("read", len(df), len(df), reason=f"read from {path}")]
