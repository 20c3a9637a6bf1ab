"""From a `Spec` to the list of regressions its table needs (pure: no data, no estimation).

A plain spec gives the columns of `model.columns` (Table 4: without and with controls;
Table 5: one column per lag). A heterogeneity spec gives one column per group (Tables
8–11); a mediator spec gives the three equations of the three-step method (Tables 6–7).
"""

from __future__ import annotations

from dataclasses import dataclass

from eqexp.spec import Column, LagSpec, Spec
from eqexp.terms import lag_name, square_name


@dataclass(frozen=True)
class Plan:
    model: str  # column id: "(1)", "(2)", ...
    label: str  # column header (group name, equation, or the column's own label)
    outcome: str
    regressors: list[str]
    query: str | None = None  # rows of the prepared panel this column uses


def treatment_terms(spec: Spec, lags: LagSpec | None = None) -> list[str]:
    k = (lags or spec.lags).treatment
    x = lag_name(spec.model.treatment, k)
    return [x, square_name(x)] if spec.model.square else [x]


def control_terms(spec: Spec, controls: list[str], lags: LagSpec | None = None) -> list[str]:
    k = (lags or spec.lags).controls
    return [lag_name(c, k) for c in controls]


def _column_plan(spec: Spec, i: int, column: Column) -> Plan:
    lags = column.lags or spec.lags
    controls = spec.model.controls if column.controls is None else column.controls
    regressors = treatment_terms(spec, lags) + control_terms(spec, controls, lags)
    return Plan(f"({i})", column.label or "", column.outcome or spec.model.outcome, regressors)


def plans(spec: Spec) -> list[Plan]:
    """The regressions of one job, in table order."""
    model = spec.model
    x_terms = treatment_terms(spec)
    controls = control_terms(spec, model.controls)
    if spec.mediator.variable:
        m = spec.mediator.variable
        x_mediator = x_terms if spec.mediator.square else x_terms[:1]
        return [
            Plan("(1)", "Total effect", model.outcome, x_terms + controls),
            Plan("(2)", "Mediator", m, x_mediator + controls),
            Plan("(3)", "Direct effect", model.outcome, x_terms + [m] + controls),
        ]
    if spec.hetero.groups:
        return [
            Plan(f"({i})", group, model.outcome, x_terms + controls, query)
            for i, (group, query) in enumerate(spec.hetero.groups.items(), start=1)
        ]
    return [_column_plan(spec, i, column) for i, column in enumerate(model.columns, start=1)]


def lags_needed(spec: Spec) -> dict[int, list[str]]:
    """Which variables need which lag, so they are built once on the full panel."""
    needed: dict[int, set[str]] = {}
    columns = spec.model.columns if not (spec.mediator.variable or spec.hetero.groups) else [Column()]
    for column in columns:
        lags = column.lags or spec.lags
        controls = spec.model.controls if column.controls is None else column.controls
        needed.setdefault(lags.treatment, set()).add(spec.model.treatment)
        needed.setdefault(lags.controls, set()).update(controls)
    return {k: sorted(v) for k, v in needed.items() if k > 0}
