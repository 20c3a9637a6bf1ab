"""From a `Spec` to the list of regressions its table needs (pure: no data, no estimation).

A plain spec gives the columns of `model.columns` (Table 4: without and with controls;
Table 5: one column per lag). A heterogeneity spec gives one column per group (Tables
8–11); a mediator spec gives the three equations of the three-step method (Tables 6–7).
"""

from __future__ import annotations

from dataclasses import dataclass

from eqexp.spec import Column, LagSpec, Spec, uses_iv
from eqexp.terms import lag_name, parse, square_name


@dataclass(frozen=True)
class Plan:
    model: str  # column id: "(1)", "(2)", ...
    label: str  # column header (group name, equation, or the column's own label)
    outcome: str
    regressors: list[str]
    query: str | None = None  # rows of the prepared panel this column uses
    endogenous: tuple[str, ...] = ()  # 2SLS: the instrumented regressors (the treatment terms and model.endogenous)
    instruments: tuple[str, ...] = ()  # ... and the excluded instruments


def treatment_terms(spec: Spec, lags: LagSpec | None = None) -> list[str]:
    k = (lags or spec.lags).treatment
    x = lag_name(spec.model.treatment, k)
    return [x, square_name(x)] if spec.model.square else [x]


def control_terms(spec: Spec, controls: list[str], lags: LagSpec | None = None) -> list[str]:
    k = (lags or spec.lags).controls
    return [lag_name(c, k) for c in controls]


def instrument_terms(spec: Spec, lags: LagSpec | None = None) -> list[str]:
    """The excluded instruments, lagged as the treatment is (the instrument of L.x is L.z; `z_sq` squares the lag)."""
    k = (lags or spec.lags).treatment
    terms = []
    for z in spec.model.instruments:
        term = parse(z)
        lagged = lag_name(term.variable, term.lag + k)
        terms.append(square_name(lagged) if term.squared else lagged)
    return terms


def endogenous_terms(spec: Spec, lags: LagSpec | None = None) -> list[str]:
    """model.endogenous, lagged as the controls are."""
    return control_terms(spec, list(spec.model.endogenous), lags)


def _iv(spec: Spec, lags: LagSpec | None = None) -> dict:
    """The IV fields of a plan (none for OLS)."""
    if not uses_iv(spec):
        return {}
    return {"endogenous": (*treatment_terms(spec, lags), *endogenous_terms(spec, lags)), "instruments": tuple(instrument_terms(spec, lags))}


def _column_plan(spec: Spec, i: int, column: Column) -> Plan:
    lags = column.lags or spec.lags
    controls = spec.model.controls if column.controls is None else column.controls
    regressors = treatment_terms(spec, lags) + _endogenous(spec, lags) + control_terms(spec, controls, lags)
    return Plan(f"({i})", column.label or "", column.outcome or spec.model.outcome, regressors, **_iv(spec, lags))


def _endogenous(spec: Spec, lags: LagSpec | None = None) -> list[str]:
    return endogenous_terms(spec, lags) if uses_iv(spec) else []


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
            Plan(f"({i})", group, model.outcome, x_terms + _endogenous(spec) + controls, query, **_iv(spec))
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
        if uses_iv(spec):
            for z in spec.model.instruments:
                needed.setdefault(parse(z).lag + lags.treatment, set()).add(parse(z).variable)
            needed.setdefault(lags.controls, set()).update(spec.model.endogenous)
    return {k: sorted(v) for k, v in needed.items() if k > 0}
