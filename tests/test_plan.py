"""The planner on its own (as pyfixest's tests/test_plan.py): from a spec to the regressions a
table needs, with no data and no estimation; and the term grammar the plans are written in."""

import pytest

from eqexp.models import lags_needed, plans
from eqexp.spec import Column, HeteroSpec, LagSpec, MediatorSpec, ModelSpec, Spec
from eqexp.terms import Term, base_variable, label, lag_name, parse, square_name, squared

CONTROLS = ["scale", "age"]


def spec(**parts) -> Spec:
    return Spec(model=ModelSpec(controls=list(CONTROLS), **parts.pop("model", {})), **parts)


def test_plain_columns_follow_model_columns():
    planned = plans(spec(model={"columns": [Column(label="", controls=[]), Column(label="with controls")]}))
    assert [(p.model, p.label, p.outcome, p.regressors, p.query) for p in planned] == [
        ("(1)", "", "quality", ["market", "market_sq"], None),
        ("(2)", "with controls", "quality", ["market", "market_sq", "scale", "age"], None),
    ]


def test_columns_with_their_own_lags_outcome_and_no_square():
    planned = plans(spec(model={"square": False, "columns": [Column(lags=LagSpec(treatment=2)), Column(outcome="rd", lags=LagSpec(1, 1))]}))
    assert planned[0].regressors == ["L2_market", "scale", "age"] and planned[0].outcome == "quality"
    assert planned[1].regressors == ["L1_market", "L1_scale", "L1_age"] and planned[1].outcome == "rd"


def test_groups_give_one_column_each_with_their_query():
    groups = {"State-Owned": "soe == 1", "Other": "soe == 0"}
    planned = plans(spec(hetero=HeteroSpec(name="ownership", groups=groups)))
    assert [(p.model, p.label, p.query) for p in planned] == [("(1)", "State-Owned", "soe == 1"), ("(2)", "Other", "soe == 0")]
    assert all(p.regressors == ["market", "market_sq", "scale", "age"] for p in planned)


@pytest.mark.parametrize(("square", "mediator_x"), [(False, ["market"]), (True, ["market", "market_sq"])])
def test_mediation_is_three_equations(square, mediator_x):
    planned = plans(spec(mediator=MediatorSpec(name="rd", variable="rd", square=square)))
    assert [(p.label, p.outcome) for p in planned] == [("Total effect", "quality"), ("Mediator", "rd"), ("Direct effect", "quality")]
    assert planned[1].regressors == [*mediator_x, "scale", "age"]
    assert planned[2].regressors == ["market", "market_sq", "rd", "scale", "age"]


def test_lags_are_planned_once_per_distance():
    table5 = [Column(lags=LagSpec(k, 0)) for k in (1, 2, 3)] + [Column(lags=LagSpec(k, k)) for k in (1, 2, 3)]
    needed = lags_needed(spec(model={"columns": table5}))
    assert needed == {1: ["age", "market", "scale"], 2: ["age", "market", "scale"], 3: ["age", "market", "scale"]}
    assert lags_needed(spec()) == {}
    assert lags_needed(spec(lags=LagSpec(treatment=2))) == {2: ["market"]}


def test_term_grammar_round_trips():
    for variable, k, sq in [("market", 0, False), ("market", 2, True), ("spill_scale", 1, False), ("x", 12, True)]:
        term = lag_name(variable, k)
        term = square_name(term) if sq else term
        assert parse(term) == Term(variable, k, sq) and base_variable(term) == variable
    assert squared("L1_market_sq") == "L1_market" and squared("market") is None
    labels = {"market": "Market"}
    assert [label(t, labels) for t in ("market_sq", "L1_market", "L3_market_sq", "other")] == ["Market²", "L.Market", "L3.Market²", "other"]
