"""The analyses a job can ask for, each filling the job's fits, tests and tables.

- regression: the columns of `model.columns` (Tables 4 and 5);
- heterogeneity: one column per group plus the group-difference tests (Tables 8–11);
- mediation: the three equations plus Sobel and the bootstrap (Tables 6–7);
- descriptives and correlations (Tables 2 and 3).
Every model with a squared treatment gets the Lind–Mehlum inverted-U test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from eqexp.estimate import Fit
from eqexp.inference.utest import utest
from eqexp.report.descriptives import correlation_table, correlations, describe, descriptives_table
from eqexp.report.regression import regression_table

if TYPE_CHECKING:
    from eqexp.runner import JobResult
    from eqexp.spec import Spec


def test_rows(model: str, test: str, values: dict) -> list[dict]:
    """Long format of tests.csv: one row per (model, test, statistic)."""
    return [{"model": model, "test": test, "statistic": k, "value": v} for k, v in values.items()]


def inverted_u(fit: Fit) -> tuple[str, str, object] | None:
    """The utest of a fit whose regressors include `x` and `x_sq`, or None."""
    square = next((r for r in fit.regressors if r.endswith("_sq") and r[:-3] in fit.regressors), None)
    if square is None:
        return None
    x = square[:-3]
    i, j = fit.regressors.index(x), fit.regressors.index(square)
    vcov = fit.vcov[np.ix_([i, j], [i, j])]
    low, high = fit.ranges[x]
    return x, square, utest(fit.coef(x), fit.coef(square), vcov, low, high, fit.df_t)


def utest_notes(fits: list[Fit], rows: list[dict]) -> list[str]:
    notes = []
    for f in fits:
        found = inverted_u(f)
        if found is None:
            continue
        x, _, result = found
        rows += test_rows(f.model, "utest", result.to_dict())
        notes.append(f"Inverted-U test {f.model} ({x}): {result.verdict}")
    return notes


def regression(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    from eqexp.runner import fit_plans

    result.fits = fit_plans(df, spec)
    rows: list[dict] = []
    notes = utest_notes(result.fits, rows)
    result.tests = pd.DataFrame(rows, columns=["model", "test", "statistic", "value"])
    labels = [f.sample for f in result.fits] if spec.hetero.groups else [p or "" for p in (c.label for c in spec.model.columns)]
    result.tables["table"] = regression_table(
        result.fits,
        spec.report.title or spec.model.name,
        spec.report.labels,
        spec.report.stat,
        spec.report.digits,
        first_terms=[spec.model.treatment, f"{spec.model.treatment}_sq"],
        groups=labels if any(labels) else None,
        notes=notes,
    )


def descriptives(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    summary = describe(df, spec.report.descriptives)
    result.tests = summary.melt(id_vars="variable", var_name="statistic").rename(columns={"variable": "model"}).assign(test="describe")
    result.tables["table"] = descriptives_table(summary, spec.report.labels, spec.report.title or "Descriptive statistics")


def correlation(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    r, p = correlations(df, spec.report.descriptives)
    long = r.stack().rename("value").reset_index().set_axis(["model", "statistic", "value"], axis=1)
    result.tests = long.assign(test="corr", statistic="corr." + long.statistic)
    result.tables["table"] = correlation_table(r, p, spec.report.labels, spec.report.title or "Correlation analysis")


ANALYSES = {"regression": regression, "descriptives": descriptives, "correlations": correlation}


def run(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    """Dispatch on the kind of analysis the spec asks for."""
    ANALYSES[spec.analysis](df, spec, result)
