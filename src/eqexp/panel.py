"""Panel preparation: gap-aware lags, squared terms, trimming or winsorizing, sample filters.

Every function takes a DataFrame and returns a new one; every step that removes or
changes rows says how many in a `Step` record, so nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable

import numpy as np
import pandas as pd

from eqexp.data.validate import DataValidationError, check_types
from eqexp.spec import SampleSpec, Spec, SpecError, TrimSpec, numeric_variables
from eqexp.steps import Step
from eqexp.terms import lag_name, square_name

UNIT, TIME = "firm_id", "year"  # the reference study's; a data config names its own (data.id, data.time)


def as_numbers(df: pd.DataFrame, numbers: dict[str, str], where: str) -> pd.DataFrame:
    """The panel with every column a spec uses as a number (`numbers`: column -> the field that
    names it) holding numbers, or a named error (the file `where`, the column, the field, how many
    rows, examples, the fix) before any estimation. A text column whose every value reads as a
    number ("3.5") becomes numbers."""
    used = {c: field for c, field in numbers.items() if c in df.columns}
    try:
        check_types(df, dict.fromkeys(used, "numeric"), where)
    except DataValidationError as err:
        fields = ", ".join(f"'{c}' is used by {f}" for c, f in used.items() if f"'{c}'" in str(err))
        raise DataValidationError(f"{err}\n  ({fields}: it must be a number in every row, or missing.)") from None
    text = [c for c in used if _not_numbers(df[c])]
    return df.assign(**{c: pd.to_numeric(df[c]).astype(float) for c in text}) if text else df


def _not_numbers(s: pd.Series) -> bool:
    """Text or booleans: a column `as_numbers` converts."""
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def unusual_columns(df: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    """The `columns` of `df` that `as_numbers` or `drop_infinite` would change: text, booleans, ±inf."""
    def unusual(s: pd.Series) -> bool:
        if _not_numbers(s):
            return True
        return pd.api.types.is_float_dtype(s) and bool(np.isinf(s.to_numpy(dtype=float, na_value=np.nan)).any())
    return [c for c in columns if c in df.columns and unusual(df[c])]


def drop_infinite(df: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, list[Step]]:
    """Remove the rows with +inf or -inf in any of `columns`, one counted step per column, as
    fixest removes them. Run after lags and squares: a lag of a finite column is finite, but a
    square overflows past 1.3e154."""
    steps = []
    for column in (c for c in dict.fromkeys(columns) if c in df.columns and pd.api.types.is_float_dtype(df[c])):
        infinite = np.isinf(df[column].to_numpy())
        if infinite.any():
            steps.append(Step(f"infinite values in {column}", len(df), len(df) - int(infinite.sum()),
                              reason="+inf or -inf: removed, as fixest does"))
            df = df.loc[~infinite]
    return df, steps


def add_lags(df: pd.DataFrame, variables: list[str], k: int, unit: str = UNIT, time: str = TIME) -> pd.DataFrame:
    """Add `L{k}_{v}` = v of the same unit in calendar year t-k, missing when that year is absent.

    A self-merge on (unit, year - k), as Stata's `L.` after `xtset`: a firm seen in 2004
    and 2006 has no L1 in 2006. `groupby().shift()` would be wrong on an unbalanced panel.
    """
    if k == 0 or not variables:
        return df
    lagged = df[[unit, time, *variables]].copy()
    lagged[time] = lagged[time] + k
    lagged = lagged.rename(columns={v: lag_name(v, k) for v in variables})
    return df.merge(lagged, on=[unit, time], how="left", validate="one_to_one")


def province_series(df: pd.DataFrame, variable: str, extra: pd.DataFrame | None = None, time: str = TIME) -> pd.DataFrame:
    """The province-year series of a province-level variable: from `extra` (e.g. the build's
    province-year table, which reaches back before the panel's first year) or from the panel."""
    if extra is not None and variable in extra:
        return extra[["province", TIME, variable]].rename(columns={TIME: time})
    series = df[["province", time, variable]].drop_duplicates(["province", time, variable])
    clash = series.duplicated(["province", time]).sum()
    if clash:
        raise SpecError(f"lags.unit=province needs '{variable}' constant within province-year; {clash} province-years vary. Use lags.unit=firm.")
    return series


def add_province_lags(df: pd.DataFrame, variable: str, k: int, series: pd.DataFrame, time: str = TIME) -> pd.DataFrame:
    """`L{k}_{v}` from the province-year series: present whenever the province has year t-k."""
    lagged = add_lags(series, [variable], k, unit="province", time=time)[["province", time, lag_name(variable, k)]]
    return df.merge(lagged, on=["province", time], how="left", validate="many_to_one")


def add_interactions(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """A column for each interacted effect `a^b` (pyfixest's notation): one code per (a, b) cell,
    missing where a part is missing, so that `region^year` works as a fixed effect or cluster."""
    for name in (n for n in names if "^" in n and n not in df):
        codes = df.groupby(name.split("^"), sort=True).ngroup()
        df = df.assign(**{name: codes.where(codes >= 0)})
    return df


def add_square(df: pd.DataFrame, variable: str) -> pd.DataFrame:
    """Precompute `{v}_sq`: pyfixest silently drops `x**2` written in a formula."""
    return df.assign(**{square_name(variable): df[variable] ** 2})


def stata_percentile(values: pd.Series, q: float) -> float:
    """Percentile as Stata's `_pctile`/`winsor2` compute it (Hyndman–Fan type 2)."""
    return float(np.percentile(values.dropna().to_numpy(), q, method="averaged_inverted_cdf"))


def _bounds(df: pd.DataFrame, variable: str, spec: TrimSpec) -> tuple[pd.Series, pd.Series]:
    """Lower and upper cut-offs per row: pooled, or within each `by` group."""
    if spec.by is None:
        lo, hi = stata_percentile(df[variable], spec.lower), stata_percentile(df[variable], spec.upper)
        return pd.Series(lo, index=df.index), pd.Series(hi, index=df.index)
    grouped = df.groupby(spec.by)[variable]
    lo = grouped.transform(lambda s: stata_percentile(s, spec.lower))
    hi = grouped.transform(lambda s: stata_percentile(s, spec.upper))
    return lo, hi


def apply_trim(df: pd.DataFrame, spec: TrimSpec) -> tuple[pd.DataFrame, list[Step]]:
    """`winsor2 v, cuts(lower upper) [trim] [by()]`: drop or cap values outside the cut-offs.

    Trimming drops the firm-year (the study's 5 % trimming of quality); winsorizing
    replaces the value with the cut-off. Missing values are left as they are.
    """
    if spec.method == "none":
        return df, []
    steps = []
    for variable in spec.variables:
        lo, hi = _bounds(df, variable, spec)
        outside = (df[variable] < lo) | (df[variable] > hi)
        label = f"{spec.method} {variable} outside P{spec.lower:g}–P{spec.upper:g}" + (f" by {spec.by}" if spec.by else "")
        if spec.method == "trim":
            steps.append(Step(label, len(df), int((~outside).sum()), reason="outside percentile cut-offs"))
            df = df.loc[~outside]
        else:
            steps.append(Step(label, len(df), len(df), changed=int(outside.sum()), reason="capped at cut-off"))
            df = df.assign(**{variable: df[variable].clip(lo, hi)})
    return df, steps


def apply_sample(df: pd.DataFrame, spec: SampleSpec) -> tuple[pd.DataFrame, list[Step]]:
    if not spec.query:
        return df, []
    kept = df.query(spec.query)
    return kept, [Step(f"sample: {spec.query}", len(df), len(kept), reason=f"not in sample '{spec.name}'")]


@dataclasses.dataclass(frozen=True)
class Preparation:
    """Everything the preparation of a panel (`eqexp.runner.prepare`) reads from a spec, so that
    its `key` names the prepared panel's content: jobs with the same key share the prepared
    panel and its estimation samples' work (`eqexp.cache.ProcessCache`)."""

    id: str
    time: str
    lags: dict[int, list[str]]  # distance -> the variables lagged by it
    lag_unit: str
    treatment: str
    numbers: dict[str, str]  # the columns used as numbers -> the field naming each (checked, and rows with ±inf dropped)
    source: str  # the data's file or name, for the messages
    squares: tuple[str, ...]  # the terms whose square the models use (treatment's and instruments')
    interacted: tuple[str, ...]  # fixed effects and clusters `a^b`, built as columns
    sample: SampleSpec
    trim: TrimSpec

    @classmethod
    def of(cls, spec: Spec) -> "Preparation":
        from eqexp.models import instrument_terms, lags_needed, treatment_terms
        from eqexp.terms import squared

        treated = [t for c in spec.model.columns for t in treatment_terms(spec, c.lags)] if spec.model.square else []
        instruments = [t for c in spec.model.columns for t in instrument_terms(spec, c.lags)]  # z_sq, as the treatment's
        squares = [squared(t) for t in [*treated, *instruments] if squared(t)]
        interacted = [n for n in [*spec.model.fixed_effects, *spec.vcov.cluster] if "^" in n]
        return cls(spec.data.id, spec.data.time, lags_needed(spec), spec.lags.unit, spec.model.treatment, numeric_variables(spec),
                   spec.data.path or f"the panel of data={spec.data.name}", tuple(dict.fromkeys(squares)),
                   tuple(sorted(set(interacted))), spec.sample, spec.trim)

    def key(self, fingerprint: str, panel: pd.DataFrame | None = None) -> str:
        """The name of the prepared panel. `numbers` changes it only where the panel holds text or
        ±inf in them: those columns (read off `panel`; none when it is not at hand, as when a sweep
        is planned) enter the key, so that jobs differing only in their mediator share one panel."""
        parts = {**dataclasses.asdict(self), "data": fingerprint}
        parts["sample"] = self.sample.query  # its name and label only say what it is
        parts["numbers"] = unusual_columns(panel, self.numbers) if panel is not None else []
        del parts["source"]
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def preparation_key(spec: Spec, fingerprint: str) -> str:
    return Preparation.of(spec).key(fingerprint)
