"""Tables 2 and 3 of the study: descriptive statistics (estpost/tabstat) and pairwise
correlations with stars (pwcorr, star())."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from eqexp.distributions import t_sf
from eqexp.panel import stata_percentile
from eqexp.report.language import text, word
from eqexp.report.regression import STAR_NOTE, stars
from eqexp.report.table import Table
from eqexp.terms import label


def describe(df: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    """N, min, max, median (Stata's percentile definition), SD (n-1), mean per variable."""
    rows = []
    for v in variables:
        x = df[v].dropna()
        rows.append({"variable": v, "n": len(x), "min": x.min(), "max": x.max(),
                     "median": stata_percentile(x, 50), "sd": x.std(ddof=1), "mean": x.mean()})
    return pd.DataFrame(rows)


def descriptives_table(summary: pd.DataFrame, labels: dict[str, str], title: str) -> Table:
    names = ["Variable", "Sample size", "Minimum", "Maximum", "Median", "Standard deviation", "Mean"]
    header = [["", "(1)", "(2)", "(3)", "(4)", "(5)", "(6)"], [word(n, labels) for n in names]]
    body = [[label(r.variable, labels), f"{r.n:,}", *(f"{getattr(r, c):.3f}" for c in ("min", "max", "median", "sd", "mean"))]
            for r in summary.itertuples()]
    return Table(text(title, labels), header, body)


def pearson(df: pd.DataFrame, x: str, y: str) -> tuple[float, float, int, float]:
    """Pearson's r of two columns on their pairwise-complete rows, its t, df = n − 2 and two-sided p (pwcorr, sig)."""
    pair = df[[x, y]].dropna()
    r = float(pair.iloc[:, 0].corr(pair.iloc[:, 1]))
    df_t = len(pair) - 2
    t = r * np.sqrt(df_t / (1 - r**2))
    return r, float(t), df_t, float(2 * t_sf(abs(t), df_t))


def pairwise(df: pd.DataFrame, variables: list[str]) -> dict[tuple[str, str], tuple[float, float, int, float]]:
    """`pearson` of every pair of `variables`, each pair once, in the order they are listed."""
    return {(x, y): pearson(df, x, y) for x, y in itertools.combinations(variables, 2)}


def correlations(df: pd.DataFrame, variables: list[str],
                 pairs: dict[tuple[str, str], tuple[float, float, int, float]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise Pearson correlations and their two-sided p-values (pairwise-complete rows), from `pairs` if given."""
    r, p = pd.DataFrame(np.eye(len(variables)), variables, variables), pd.DataFrame(0.0, variables, variables)
    for (x, y), (rho, _, _, p_value) in (pairwise(df, variables) if pairs is None else pairs).items():
        r.loc[x, y] = r.loc[y, x] = rho
        p.loc[x, y] = p.loc[y, x] = p_value
    return r, p


def correlation_table(r: pd.DataFrame, p: pd.DataFrame, labels: dict[str, str], title: str) -> Table:
    names = list(r.index)
    header = [[word("Variables", labels)] + [f"({i})" for i in range(1, len(names) + 1)]]
    body = []
    for i, v in enumerate(names):
        cells = [f"{r.iat[i, j]:.3f}{stars(p.iat[i, j]) if i != j else ''}" if j <= i else "" for j in range(len(names))]
        body.append([f"({i + 1}) {label(v, labels)}"] + cells)
    return Table(text(title, labels), header, body, notes=[word(STAR_NOTE, labels)])
