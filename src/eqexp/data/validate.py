"""Validation of user-supplied raw files and panels (a bottom module: it imports nothing of eqexp's).

Every check raises `DataValidationError` with a message a user can act on: the file, the
column, how many rows are bad, up to five of them, and how to fix it. Checks run on load,
before any long work starts.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["numeric", "integer", "string", "code"]

# Columns shown next to the offending one in examples, when present.
_CONTEXT = ("firm_id", "province", "industry", "hs6", "destination", "category", "year")
_MAX_EXAMPLES = 5


class DataValidationError(ValueError):
    """Raised when user data cannot be used as given; the message says how to fix it."""


# --------------------------------------------------------------------------- checks


def _examples(df: pd.DataFrame, bad: pd.Series, columns: Iterable[str]) -> str:
    cols = list(dict.fromkeys([c for c in _CONTEXT if c in df.columns] + [c for c in columns if c in df.columns]))
    return df.loc[np.asarray(bad, dtype=bool), cols].head(_MAX_EXAMPLES).to_string()


def require_columns(df: pd.DataFrame, required: Iterable[str], file: str) -> None:
    """All `required` columns are present, else name the missing ones and the nearest found."""
    missing = [c for c in required if c not in df.columns]
    if not missing:
        return
    lines = [f"{file}: missing required column(s): {', '.join(missing)}."]
    for col in missing:
        near = difflib.get_close_matches(col, [str(c) for c in df.columns], n=1, cutoff=0.5)
        yours = near[0] if near else "your_name"
        guess = f" (did you mean '{near[0]}'?)" if near else ""
        lines.append(f"  '{col}': map your column with data.columns: {{{yours}: {col}}}{guess}")
    lines.append(f"Columns found: {', '.join(map(str, df.columns))}.")
    raise DataValidationError("\n".join(lines))


def _bad_for_kind(s: pd.Series, kind: Kind) -> pd.Series:
    """Non-missing values that are not of `kind` (blank text counts as missing)."""
    present = s.notna()
    if kind == "string":
        if s.dtype != object:
            return present & ~pd.api.types.is_string_dtype(s)
        return present & ~s.map(lambda v: isinstance(v, str))
    if kind == "code":  # an identifier written with digits, as text or as an integer
        if pd.api.types.is_integer_dtype(s):
            return s < 0
        codes, uniques = pd.factorize(s)  # millions of records, a few thousand codes: check each once
        text = pd.Series(uniques).astype("string").str.strip()
        bad = (text.ne("") & ~text.str.fullmatch(r"\d+")).fillna(False).to_numpy(bool)
        return pd.Series(bad[codes] & (codes >= 0), index=s.index)
    num = pd.to_numeric(s, errors="coerce")
    if kind == "numeric":
        return present & num.isna()
    if kind == "integer":
        return present & (num.isna() | (num % 1 != 0))
    raise ValueError(f"unknown kind {kind!r}; use numeric, integer, string or code")


_TYPE_FIX = {
    "numeric": "store numbers without units or thousands separators (e.g. 1234.5, not '1,234.5 RMB'), and leave a missing value empty (or NA), not '.' or '-'",
    "integer": "store whole numbers (e.g. 2004, not '2004年' or 2004.5)",
    "string": "store text values",
    "code": "store codes as digits only (e.g. '847130'); keep leading zeros by reading the column as text",
}


def check_types(df: pd.DataFrame, expected: Mapping[str, Kind], file: str) -> None:
    """Each column in `expected` holds values of its kind (missing values are allowed here)."""
    problems = []
    for col, kind in expected.items():
        if col not in df.columns:
            continue
        bad = _bad_for_kind(df[col], kind)
        if bad.any():
            problems.append(
                f"column '{col}' should be {kind} but {int(bad.sum())} row(s) are not; examples:\n"
                f"{_examples(df, bad, [col])}\n  Fix: {_TYPE_FIX[kind]}."
            )
    if problems:
        raise DataValidationError(f"{file}: " + f"\n{file}: ".join(problems))


def check_unique_keys(df: pd.DataFrame, keys: Sequence[str], file: str) -> None:
    """No two rows share the same `keys`."""
    dup = df.duplicated(list(keys), keep=False)
    if dup.any():
        n_keys = int(df.loc[dup, list(keys)].drop_duplicates().shape[0])
        raise DataValidationError(
            f"{file}: {int(dup.sum())} row(s) share {n_keys} duplicated key(s) ({', '.join(keys)}); examples:\n"
            f"{_examples(df, dup, keys)}\n"
            f"  Fix: keep one row per ({', '.join(keys)}) - aggregate or de-duplicate the file, or declare the columns "
            f"that identify a row: the panel's unit and period are data.id and data.time."
        )


@dataclass(frozen=True)
class Rule:
    """A range rule: `bad(df)` flags impossible rows in `columns`."""

    columns: tuple[str, ...]
    bad: Callable[[pd.DataFrame], pd.Series]
    what: str  # what is wrong, e.g. "negative values"
    fix: str


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(df[col], errors="coerce")


def at_least(col: str, lo: float, fix: str = "") -> Rule:
    return Rule((col,), lambda d: _num(d, col) < lo, f"values below {lo}",
                fix or f"'{col}' must be >= {lo}; check its unit and sign")


def positive(col: str, fix: str = "") -> Rule:
    return Rule((col,), lambda d: _num(d, col) <= 0, "values <= 0", fix or f"'{col}' must be > 0; check the column mapping")


def between(col: str, lo: float, hi: float, fix: str = "") -> Rule:
    return Rule((col,), lambda d: (_num(d, col) < lo) | (_num(d, col) > hi), f"values outside [{lo}, {hi}]",
                fix or f"'{col}' must lie in [{lo}, {hi}]")


def one_of(col: str, values: Sequence, fix: str = "") -> Rule:
    """Values (compared as text) in `values`; missing values pass."""
    allowed = {str(v) for v in values}

    def bad(d: pd.DataFrame) -> pd.Series:
        s = d[col]
        text = (s.astype("Int64") if pd.api.types.is_float_dtype(s) else s).astype("string").str.strip()
        return s.notna() & ~text.isin(allowed)
    return Rule((col,), bad, f"values not in {{{', '.join(sorted(allowed))}}}", fix or f"'{col}' must be one of {sorted(allowed)}")


def not_after(col: str, other: str, fix: str = "") -> Rule:
    return Rule((col, other), lambda d: _num(d, col) > _num(d, other), f"'{col}' after '{other}'",
                fix or f"'{col}' cannot be later than '{other}'")


def check_ranges(df: pd.DataFrame, rules: Iterable[Rule], file: str) -> None:
    """Apply every rule whose columns are present; report all failures at once (missing values pass)."""
    problems = []
    for rule in rules:
        if not all(c in df.columns for c in rule.columns):
            continue
        bad = rule.bad(df).fillna(False).astype(bool)
        if bad.any():
            problems.append(
                f"column '{rule.columns[0]}' has {int(bad.sum())} row(s) with {rule.what}; examples:\n"
                f"{_examples(df, bad, rule.columns)}\n  Fix: {rule.fix}."
            )
    if problems:
        raise DataValidationError(f"{file}: " + f"\n{file}: ".join(problems))


# --------------------------------------------------------------------------- schemas of the raw sources

HS_VINTAGES = (1992, 1996, 2002, 2007, 2012, 2017, 2022)  # the HS revisions, by the year they took effect
FLOWS = {
    "columns": ("firm_id", "hs6", "destination", "year", "value_usd", "quantity", "unit"),
    "types": {"hs6": "code", "year": "integer", "value_usd": "numeric", "quantity": "numeric"},
    "rules": (),  # bad flows are cleaned and logged by measures.quality, not rejected
}
# The customs file as received: FLOWS keyed by the customs' party_id (or an ASIF firm_id), transaction months allowed.
CUSTOMS = {
    "columns": ("hs6", "destination", "year", "value_usd", "quantity", "unit"),
    "types": {"hs6": "code", "year": "integer", "value_usd": "numeric", "quantity": "numeric", "month": "integer",
              "hs_vintage": "integer"},
    "rules": (
        between("month", 1, 12, "month is the calendar month of a transaction record, 1-12; leave it out for yearly records"),
        one_of("hs_vintage", HS_VINTAGES, "hs_vintage is the year of the HS revision the code follows (2002 for HS2002); "
               "leave the column out to take each year's vintage"),
    ),
}
HS_CONCORDANCE = {
    "columns": ("from_vintage", "from_hs6", "to_hs6"),
    "types": {"from_vintage": "integer", "from_hs6": "code", "to_hs6": "code"},
    "rules": (one_of("from_vintage", HS_VINTAGES, "from_vintage is the year of the code's HS revision (2007 for HS2007)"),),
}
RAUCH = {
    "columns": ("hs6", "con", "lib"),
    "types": {"hs6": "code"},
    "keys": ("hs6",),
    "rules": tuple(one_of(c, ("n", "r", "w"), f"'{c}' is Rauch's class: n differentiated, r reference priced, w exchange "
                          "traded") for c in ("con", "lib")),
}
MATCH = {
    "columns": ("party_id", "year", "firm_id"),
    "types": {"year": "integer"},
    "keys": ("party_id", "year"),
}
ACCOUNTS = {
    "columns": ("firm_id", "year", "total_assets", "liabilities", "profit", "inventory", "employment",
                "founding_year", "registration_type", "province", "industry"),
    "types": {"year": "integer", "total_assets": "numeric", "liabilities": "numeric", "profit": "numeric",
              "inventory": "numeric", "employment": "numeric", "founding_year": "integer", "industry": "code",
              "registration_type": "code", "province": "code"},
    "keys": ("firm_id", "year"),
    # negative amounts cannot be real (a sign or unit mistake in the mapping): reject them; rows the
    # ASIF cleaning of methods §1.4.10 removes (zero assets, founding after the year, ...) are
    # dropped and logged by measures.controls instead, as the literature does
    "rules": (
        at_least("total_assets", 0, "total assets cannot be negative; check the sign and that the unit is thousand RMB"),
        at_least("liabilities", 0, "liabilities cannot be negative; check the column mapping"),
        at_least("inventory", 0, "inventory cannot be negative; check the column mapping"),
    ),
}
PRICE_INDEX = {
    "columns": ("province", "year", "category", "index"),
    "types": {"province": "code", "year": "integer", "index": "numeric"},
    "keys": ("province", "year", "category"),
    "rules": (
        positive("index", "a price index must be > 0; leave missing values empty, not 0"),
        between("index", 50, 200, "the index must be a chain index (previous year = 100, typically 90-115); convert "
                "fixed-base levels P to I_t = 100 * P_t / P_t-1"),
    ),
}
PANEL = {
    "columns": ("firm_id", "year", "province", "quality", "market"),
    "types": {"year": "integer", "quality": "numeric", "market": "numeric"},
    "keys": ("firm_id", "year"),
    "rules": (
        between("quality", 0, 1, "normalised quality (r_quality, TQ) lies in [0, 1]; map the normalised measure, "
                "not the raw residual"),
        at_least("total_assets", 0, "total assets cannot be negative; check the sign and that the unit is thousand RMB"),
        at_least("employment", 0),
        not_after("founding_year", "year", "a firm cannot be founded after the year it is observed; check the "
                  "founding-year column"),
    ),
}


# Named rules for ready panels (`data.schema`), applied only where a data config declares them.
SCHEMAS = {"export_quality": PANEL}


def user_rules(rules: Mapping[str, Mapping[str, float]]) -> tuple[Rule, ...]:
    """A data config's own rules, `{column: {min: ..., max: ...}}`, as range rules."""
    out = []
    for column, bounds in rules.items():
        unknown = set(bounds) - {"min", "max"}
        if unknown:
            raise DataValidationError(f"data.rules.{column}: unknown bound(s) {', '.join(sorted(unknown))}; use min and max.")
        if "min" in bounds and "max" in bounds:
            out.append(between(column, bounds["min"], bounds["max"]))
        elif "min" in bounds:
            out.append(at_least(column, bounds["min"]))
        elif "max" in bounds:
            out.append(Rule((column,), lambda d, c=column, hi=bounds["max"]: _num(d, c) > hi, f"values above {bounds['max']}",
                            f"'{column}' must be at most {bounds['max']}"))
    return tuple(out)


def validate(df: pd.DataFrame, schema: Mapping, file: str) -> None:
    """Run the checks of one schema (CUSTOMS, FLOWS, ACCOUNTS, PRICE_INDEX, HS_CONCORDANCE, RAUCH, MATCH, PANEL) in
    order of cheapness."""
    require_columns(df, schema["columns"], file)
    check_types(df, schema.get("types", {}), file)
    if "keys" in schema:
        check_unique_keys(df, schema["keys"], file)
    check_ranges(df, schema.get("rules", ()), file)
