"""Regression tables in the style of the reference study (esttab / etable layout)."""

from __future__ import annotations

import math

from eqexp.estimate import Fit
from eqexp.report.table import Row, Table
from eqexp.terms import label

STAR_NOTE = "*** p<0.01, ** p<0.05, * p<0.1"
def stars(p: float) -> str:
    return "***" if p < 0.01 else "**" if p < 0.05 else "*" if p < 0.1 else ""


def _term_order(fits: list[Fit], first: list[str]) -> list[str]:
    seen = dict.fromkeys(t for t in first if any(t in f.regressors for f in fits))
    for fit in fits:
        seen.update(dict.fromkeys(fit.regressors))
    return list(seen)


def _number(value: float, digits: int) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}f}"


def regression_table(
    fits: list[Fit],
    title: str,
    labels: dict[str, str],
    stat: str = "t",
    digits: int = 4,
    first_terms: list[str] | None = None,
    groups: list[str] | None = None,
    notes: list[str] | None = None,
) -> Table:
    """Coefficients with stars, t (or SE) in parentheses, fit statistics and FE rows."""
    header: list[Row] = [[""] + [f"({i})" for i in range(1, len(fits) + 1)]]
    if groups:
        header.append([""] + groups)
    header.append(["VARIABLES"] + [label(f.outcome, labels) for f in fits])

    body: list[Row] = []
    for term in _term_order(fits, first_terms or []):
        coef_row, stat_row = [label(term, labels)], [""]
        for fit in fits:
            tidy = fit.tidy.set_index("term")
            if term not in tidy.index:
                coef_row.append("")
                stat_row.append("")
                continue
            est = tidy.loc[term]
            coef_row.append(f"{est.estimate:.{digits}f}{stars(est.p_value)}")
            inner = f"{est.statistic:.2f}" if stat == "t" else f"{est.std_error:.{digits}f}"
            stat_row.append(f"({inner})")
        body += [coef_row, stat_row]

    fixed_effects = list(dict.fromkeys(fe for f in fits for fe in f.fixed_effects))
    footer: list[Row] = [
        ["Observations"] + [f"{f.n_obs:,}" for f in fits],
        ["R²"] + [_number(f.r2, 3) for f in fits],
        ["Within R²"] + [_number(f.r2_within, 3) for f in fits],
        *([f"{label(fe, labels)} FE"] + ["YES" if fe in f.fixed_effects else "NO" for f in fits] for fe in fixed_effects),
        ["S.E. clustered by" if any(f.vcov_label not in ("Robust", "IID") for f in fits) else "S.E."] + [f.vcov_label for f in fits],
    ]
    paren = "t-statistics" if stat == "t" else "Standard errors"
    return Table(title, header, body, footer, [f"{paren} in parentheses", STAR_NOTE, *(notes or [])])
