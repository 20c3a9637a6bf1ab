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
    df = read_file(path, spec.columns)
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
