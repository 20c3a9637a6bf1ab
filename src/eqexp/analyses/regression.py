"""Regression tables: the columns a spec plans, with the inverted-U test, and the group or
mediation tests when the spec asks for them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from eqexp.analyses.heterogeneity import group_differences
from eqexp.analyses.inverted_u import utest_notes
from eqexp.analyses.mediation import mediation
from eqexp.estimate import Fit, fit
from eqexp.models import Plan, plans
from eqexp.report.regression import regression_table
from eqexp.spec import Spec, base_variable

if TYPE_CHECKING:
    from eqexp.runner import JobResult


def fit_plans(df: pd.DataFrame, spec: Spec, planned: list[Plan]) -> list[Fit]:
    fits = []
    for plan in planned:
        rows = df.query(plan.query) if plan.query else df
        print(f"[eqexp] estimating {plan.model} {plan.label or plan.outcome}: {len(rows):,} rows", flush=True)
        fits.append(fit(rows, plan.outcome, plan.regressors, spec.model.fixed_effects, spec.vcov, plan.model, plan.label or spec.sample.label))
    return fits


def regression(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    planned = plans(spec)
    result.fits = fit_plans(df, spec, planned)
    rows: list[dict] = []
    notes = utest_notes(df, spec, planned, result, rows)
    if spec.hetero.groups:
        notes += group_differences(df, spec, result, rows)
    if spec.mediator.variable:
        notes += mediation(df, spec, result, rows)
    result.tests = pd.DataFrame(rows, columns=["model", "test", "statistic", "value"])
    labels = [p.label for p in planned]
    result.tables["table"] = regression_table(
        result.fits,
        spec.report.title or spec.model.name,
        spec.report.labels,
        spec.report.stat,
        spec.report.digits,
        first_terms=[t for p in planned for t in p.regressors if base_variable(t) == spec.model.treatment],
        groups=labels if any(labels) else None,
        notes=notes,
    )
