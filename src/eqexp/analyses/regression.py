"""Regression tables: the columns a spec plans, with the inverted-U test, the group or
mediation tests when the spec asks for them, and a multiverse's draws under the null."""

from __future__ import annotations

import pandas as pd

from eqexp.analyses.endogeneity import iv_diagnostics, iv_table_fits
from eqexp.analyses.findings import Findings
from eqexp.analyses.heterogeneity import group_differences
from eqexp.analyses.inverted_u import inverted_u_tests
from eqexp.analyses.mediation import mediation
from eqexp.analyses.wild import wild_tests
from eqexp.coefficients import coefficient_rows
from eqexp.estimate import Fit, Workspace, fit
from eqexp.models import Plan, plans
from eqexp.multiverse.draws import null_draws
from eqexp.report.regression import regression_table
from eqexp.spec import Spec, SpecError, uses_iv
from eqexp.terms import base_variable

def check_samples(workspace: Workspace, spec: Spec, planned: list[Plan]) -> None:
    """Every planned column has rows to be estimated on: an empty group is found before any estimation."""
    cluster = list(spec.vcov.cluster) if spec.vcov.type.startswith("CRV") else []
    empty = [p for p in planned if workspace.sample([p.outcome, *p.regressors, *p.instruments, *cluster], spec.model.fixed_effects, p.query).n_obs == 0]
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
                        plan.label or spec.sample.label, workspace, plan.query, list(plan.endogenous), list(plan.instruments)))
    return fits


def regression(df: pd.DataFrame, spec: Spec, data_key: str | None = None, cache: object = None) -> Findings:
    """The planned columns, their tests, and the table with the tests' notes under it."""
    planned = plans(spec)
    workspace = Workspace(df, data_key, cache)
    fits = fit_plans(workspace, spec, planned)
    found = Findings(fits=fits) + iv_diagnostics(spec, fits) + inverted_u_tests(workspace, spec, planned, fits) \
        + wild_tests(workspace, spec, planned, fits)
    if spec.hetero.groups:
        found += group_differences(workspace, spec)
    if spec.mediator.variable:
        found += mediation(workspace, spec, fits)
    if spec.multiverse.draws and uses_iv(spec):  # the draws are exact OLS re-estimates from per-firm moments
        found += Findings(notes=["Multiverse: a 2SLS spec has no draws under the null, so the curve's joint test is left out "
                                 "(its draws re-estimate by OLS); set multiverse.draws=0 to say so in the command."])
    elif spec.multiverse.draws:
        found += Findings(null_draws=null_draws(workspace, spec, planned, fits))
    shown, labels = (fits, [p.label for p in planned]) if not uses_iv(spec) or spec.hetero.groups else iv_table_fits(workspace, spec, planned, fits)
    table = regression_table(
        coefficient_rows(shown, fixed_effects=True),
        spec.report.title or spec.model.name,
        spec.report.labels,
        spec.report.stat,
        spec.report.digits,
        first_terms=[t for p in planned for t in [*p.regressors, *p.instruments] if base_variable(t) == spec.model.treatment or t in p.instruments],
        groups=labels if any(labels) else None,
        notes=found.notes,
        phrases=spec.report.phrases,
    )
    return found + Findings(tables={"table": table})
