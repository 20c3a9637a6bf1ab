"""A 2SLS table as ivreghdfe and esttab users report it: OLS, the first stages and 2SLS side by side,
and under them the diagnostic block (every IV model's first-stage, weak-identification, under- and
over-identification, Anderson–Rubin and endogeneity tests, eqexp.inference.iv_tests), which are
also rows of tests.csv."""

from __future__ import annotations

import pandas as pd

from eqexp.analyses.findings import Findings
from eqexp.estimate import Fit, Workspace, least_squares_of
from eqexp.inference.iv_tests import diagnostics
from eqexp.models import Plan
from eqexp.ols import LeastSquares
from eqexp.spec import Spec
from eqexp.terms import label


def iv_diagnostics(spec: Spec, fits: list[Fit]) -> Findings:
    rows, notes = [], []
    for f in fits:
        if f.iv is None:
            continue
        tests = diagnostics(f.iv)
        rows += [(f.model, t) for t in tests]
        endogenous = ", ".join(label(e, spec.report.labels) for e in f.iv.endogenous_names)
        instruments = ", ".join(label(z, spec.report.labels) for z in f.iv.instrument_names)
        notes.append(f"2SLS {f.model}: {endogenous} instrumented by {instruments} (and the controls).")
        notes += [f"  {t.test}{'' if t.hypothesis in ('all', 'joint') else ' ' + t.hypothesis}: {t.verdict}" for t in tests
                  if not t.hypothesis.startswith("size_")]
    return Findings(tests=rows, notes=notes)


def iv_table_fits(workspace: Workspace, spec: Spec, planned: list[Plan], fits: list[Fit]) -> tuple[list[Fit], list[str]]:
    """The columns of a 2SLS table, as ivreghdfe users lay it out: for each model, OLS on the same rows, each
    endogenous regressor's first stage, the reduced form (model.reduced_form), then 2SLS; and their headers."""
    columns, headers = [], []
    for plan, f in zip(planned, fits):
        if f.iv is None:
            columns.append(f)
            headers.append(plan.label)
            continue
        cluster = list(spec.vcov.cluster) if spec.vcov.type.startswith("CRV") else []
        rows = workspace.sample([plan.outcome, *plan.regressors, *plan.instruments, *cluster], spec.model.fixed_effects, plan.query)
        ols = least_squares_of(workspace, rows, plan.outcome, plan.regressors, spec.vcov)
        columns.append(_as_fit(ols, f"{f.model} OLS", f, f.outcome))
        headers.append("OLS")
        for stage, endogenous in zip(f.iv.first, f.iv.endogenous_names):
            columns.append(_as_fit(stage, f"{f.model} first stage {endogenous}", f, endogenous))
            headers.append("First stage")
        if spec.model.reduced_form:
            exogenous = [r for r in plan.regressors if r not in plan.endogenous]
            reduced = least_squares_of(workspace, rows, plan.outcome, [*plan.instruments, *exogenous], spec.vcov)
            columns.append(_as_fit(reduced, f"{f.model} reduced form", f, f.outcome))
            headers.append("Reduced form")
        columns.append(f)
        headers.append("2SLS")
    return columns, headers


def _as_fit(result: LeastSquares, model: str, like: Fit, outcome: str) -> Fit:
    tidy = pd.DataFrame({"term": list(result.names), "estimate": result.coef, "std_error": result.se, "statistic": result.statistic,
                         "p_value": result.p_value, "conf_low": result.conf_low, "conf_high": result.conf_high})
    return Fit(model=model, sample=like.sample, outcome=outcome, regressors=list(result.names), fixed_effects=like.fixed_effects,
               tidy=tidy, vcov=result.vcov, n_obs=result.n_obs, r2=result.r2,
               r2_within=result.r2_within if like.fixed_effects else float("nan"), df_t=result.df_t, vcov_label=like.vcov_label)
