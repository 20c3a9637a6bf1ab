"""The Lind–Mehlum inverted-U test on every fitted model with a squared treatment: under the
table, in tests.csv and as a figure."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from eqexp.analyses.statistics import test_rows
from eqexp.estimate import Fit, Workspace
from eqexp.inference.utest import UTestResult, utest
from eqexp.models import Plan
from eqexp.report.figures import inverted_u_figure
from eqexp.spec import Spec
from eqexp.terms import label, squared
from eqexp.tracking import metric_name

if TYPE_CHECKING:
    from eqexp.runner import JobResult


def inverted_u(fit: Fit) -> tuple[str, np.ndarray, UTestResult] | None:
    """For a fit whose regressors include `x` and `x_sq`: x, the covariance of (b_x, b_x_sq) and the utest."""
    square = next((r for r in fit.regressors if squared(r) in fit.regressors), None)
    if square is None:
        return None
    x = squared(square)
    i, j = fit.regressors.index(x), fit.regressors.index(square)
    vcov = fit.vcov[np.ix_([i, j], [i, j])]
    low, high = fit.ranges[x]
    return x, vcov, utest(fit.coef(x), fit.coef(square), vcov, low, high, fit.df_t)


def utest_notes(workspace: Workspace, spec: Spec, planned: list[Plan], result: JobResult, rows: list[dict]) -> list[str]:
    """Run the inverted-U test on every fit with a square; note it, log it, draw it (report.figures)."""
    notes = []
    queries = {p.model: p.query for p in planned}
    for f in result.fits:
        found = inverted_u(f)
        if found is None:
            continue
        x, vcov, test = found
        rows += test_rows(f.model, "utest", test.to_dict())
        notes.append(f"Inverted-U test {f.model} ({x}): {test.verdict}")
        if not spec.report.figures:
            continue
        values = workspace.array(x)[workspace.rows(queries.get(f.model))]
        values = values[~np.isnan(values)]
        name, outcome = label(x, spec.report.labels), label(f.outcome, spec.report.labels)
        inverted_u_figure(test, vcov, values, name, f"{f.model} {f.sample}: {name} and {outcome}",
                          result.out_dir / "figures" / f"inverted_u_{metric_name(f.model)}.png")
    return notes
