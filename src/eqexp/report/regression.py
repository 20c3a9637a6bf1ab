"""Regression tables in the style of the reference study (esttab / etable layout)."""

from __future__ import annotations

import math

import pandas as pd

from eqexp.coefficients import fixed_effects_of
from eqexp.report.language import sentence, text, word
from eqexp.report.table import Row, Table
from eqexp.terms import label

STAR_NOTE = "*** p<0.01, ** p<0.05, * p<0.1"


def stars(p: float) -> str:
    return "***" if p < 0.01 else "**" if p < 0.05 else "*" if p < 0.1 else ""


def _term_order(columns: list[pd.DataFrame], first: list[str]) -> list[str]:
    seen = dict.fromkeys(t for t in first if any((c.term == t).any() for c in columns))
    for column in columns:
        seen.update(dict.fromkeys(column.term))
    return list(seen)


def _number(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def regression_table(
    rows: pd.DataFrame,
    title: str,
    labels: dict[str, str],
    stat: str = "t",
    digits: int = 4,
    first_terms: list[str] | None = None,
    groups: list[str] | None = None,
    notes: list[str] | None = None,
    by: tuple[str, ...] = ("model",),
    phrases: list[list[str]] | None = None,
) -> Table:
    """Coefficients with stars, t (or SE) in parentheses, fit statistics and FE rows.

    `rows` are coefficient rows with each model's fixed effects (`coefficient_rows(fits, fixed_effects=True)`
    or a sweep's combined rows); each distinct `by` (a job's model, or a sweep's job × model) is a
    column, in order of appearance. Every text is shown as `labels` say (`eqexp.report.language`),
    the notes also through `phrases`.
    """
    columns = [part.set_index("term", drop=False) for _, part in rows.groupby(list(by), sort=False)]
    firsts = [c.iloc[0] for c in columns]
    header: list[Row] = [[""] + [f"({i})" for i in range(1, len(columns) + 1)]]
    if groups:
        header.append([""] + [text(g, labels) for g in groups])
    header.append([word("VARIABLES", labels)] + [label(f.outcome, labels) for f in firsts])

    body: list[Row] = []
    for term in _term_order(columns, first_terms or []):
        coef_row, stat_row = [label(term, labels)], [""]
        for column in columns:
            if term not in column.index:
                coef_row.append("")
                stat_row.append("")
                continue
            est = column.loc[term]
            coef_row.append(f"{est.estimate:.{digits}f}{stars(est.p_value)}")
            inner = f"{est.statistic:.2f}" if stat == "t" else f"{est.std_error:.{digits}f}"
            stat_row.append(f"({inner})")
        body += [coef_row, stat_row]

    effects = [fixed_effects_of(f.fixed_effects) for f in firsts]
    yes, no = word("YES", labels), word("NO", labels)
    clustered = any(f.vcov not in ("Robust", "IID") for f in firsts)
    footer: list[Row] = [
        [word("Observations", labels)] + [f"{int(f.n_obs):,}" for f in firsts],
        [word("R²", labels)] + [_number(f.r2, 3) for f in firsts],
        [word("Within R²", labels)] + [_number(f.r2_within, 3) for f in firsts],
        *([word("{} FE", labels, label(fe, labels))] + [yes if fe in used else no for used in effects]
          for fe in dict.fromkeys(fe for used in effects for fe in used)),
        [word("S.E. clustered by" if clustered else "S.E.", labels)]
        + [word("clustered by {}", labels, _vcov(str(f.vcov), labels), default="{}") if clustered and f.vcov not in ("Robust", "IID")
           else _vcov(str(f.vcov), labels) for f in firsts],
    ]
    paren = "t-statistics" if stat == "t" else "Standard errors"
    names = [*(groups or []), *(str(f["sample"]) for f in firsts)]
    shown = [sentence(n, labels, phrases or [], names) for n in [f"{paren} in parentheses; {STAR_NOTE}", *(notes or [])]]
    return Table(text(title, labels), header, body, footer, shown)


def _vcov(shown: str, labels: dict[str, str]) -> str:
    """A vcov's label, or the labels of its cluster variables joined by "and"."""
    return word(" and ", labels).join(text(part, labels) for part in shown.split(" and "))
