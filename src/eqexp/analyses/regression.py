"""Regression tables: the columns a spec plans, with the inverted-U test, the group or
mediation tests when the spec asks for them, and a multiverse's draws under the null."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from eqexp.analyses.heterogeneity import group_differences
from eqexp.analyses.inverted_u import utest_notes
from eqexp.analyses.mediation import mediation
from eqexp.estimate import Fit, Workspace, fit
from eqexp.models import Plan, plans
from eqexp.multiverse.draws import null_draws
from eqexp.report.regression import regression_table
from eqexp.spec import Spec, SpecError
from eqexp.terms import base_variable

if TYPE_CHECKING:
    from eqexp.runner import JobResult


def check_samples(workspace: Workspace, spec: Spec, planned: list[Plan]) -> None:
    """Every planned column has rows to be estimated on: an empty group is found before any estimation."""
    cluster = list(spec.vcov.cluster) if spec.vcov.type.startswith("CRV") else []
    empty = [p for p in planned if workspace.sample([p.outcome, *p.regressors, *cluster], spec.model.fixed_effects, p.query).n_obs == 0]
    if empty:
        what = "; ".join(f"{p.model} {p.label or p.outcome}" + (f" (query {p.query!r}: {len(workspace.rows(p.query)):,} rows before "
                         "missing values and singletons)" if p.query else "") for p in empty)
        raise SpecError(f"Model {what}: no observations left to estimate, before any model was estimated. Check the "
                        "group definitions (hetero.groups), the sample filter, the trimming and the lags.")


def fit_plans(workspace: Workspace, spec: Spec, planned: list[Plan]) -> list[Fit]:
    check_samples(workspace, spec, planned)
    df, fits = workspace.df, []
    for plan in planned:
        print(f"[eqexp] estimating {plan.model} {plan.label or plan.outcome}: {len(workspace.rows(plan.query)):,} rows", flush=True)
        fits.append(fit(df, plan.outcome, plan.regressors, spec.model.fixed_effects, spec.vcov, plan.model,
                        plan.label or spec.sample.label, workspace, plan.query))
    return fits


def regression(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    planned = plans(spec)
    workspace = Workspace(df, result.data_key)
    result.fits = fit_plans(workspace, spec, planned)
    rows: list[dict] = []
    notes = utest_notes(workspace, spec, planned, result, rows)
    if spec.hetero.groups:
        notes += group_differences(workspace, spec, result, rows)
    if spec.mediator.variable:
        notes += mediation(workspace, spec, result, rows)
    if spec.multiverse.draws:
        result.null_draws = null_draws(workspace, spec, planned, result.fits)
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
