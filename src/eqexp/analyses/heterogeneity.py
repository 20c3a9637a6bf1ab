"""Groups side by side (Tables 8–11) and the tests that their treatment effects differ:
fully interacted Wald, suest-style differences, firm-level permutation (methods §5)."""

from __future__ import annotations

import itertools
import numpy as np
import pandas as pd

from eqexp.analyses.findings import Findings
from eqexp.estimate import Sample, Workspace, two_stage_of
from eqexp.inference import groups
from eqexp.inference.hypothesis import HypothesisTest, not_applicable
from eqexp.models import Plan, plans, treatment_terms
from eqexp.spec import Spec, SpecError, VcovSpec
from eqexp.terms import label

def group_labels(workspace: Workspace, groups: dict[str, str]) -> np.ndarray:
    """Each row's group label from the groups' queries (None outside every group); rows in two groups are an error."""
    labels = np.full(len(workspace.df), None, dtype=object)
    taken = np.zeros(len(workspace.df), bool)
    for group, query in groups.items():
        rows = workspace.rows(query)
        overlap = int(taken[rows].sum())
        if overlap:
            raise SpecError(f"{overlap:,} rows belong to more than one group of hetero.groups; make the queries exclusive.")
        taken[rows] = True
        labels[rows] = group
    return labels


def any_group(groups: dict[str, str]) -> str:
    """The query of the rows in some group."""
    return " or ".join(f"({query})" for query in groups.values())


def group_design(workspace: Workspace, name: str, query: str, outcome: str, regressors: list[str], fixed_effects: list[str], unit: str,
                 iv: Plan | None = None, vcov: VcovSpec | None = None) -> groups.GroupDesign:
    """A group's estimation sample as the interacted model sees it (its absorbed columns are the group fit's).

    2SLS (`iv`, a plan with instruments, and the model's `vcov`): the regressors are the first stages' fitted values
    X̂ and the outcome ỹ − (X̃ − X̂)β̂, so that least squares on them gives the group's 2SLS β̂ (X̂ᵀ(X̃ − X̂) = 0) with
    the 2SLS residuals ỹ − X̃β̂."""
    instruments = list(iv.instruments) if iv is not None else []
    cluster = list(vcov.cluster) if instruments and vcov.type.startswith("CRV") else []
    sample = workspace.sample([outcome, *regressors, *instruments, *cluster], fixed_effects, query)
    block = workspace.absorbed(sample, [outcome, *regressors])
    yd, xd = block[:, 0], block[:, 1:]
    if instruments:
        second, data = two_stage_of(workspace, sample, outcome, regressors, list(iv.endogenous), instruments, vcov)
        fitted = xd.copy()
        q = np.column_stack([data.instruments, data.exogenous])
        for stage, e in zip(data.first, data.endogenous_names):
            fitted[:, regressors.index(e)] = q @ stage.coef
        yd, xd = yd - (xd - fitted) @ second.coef, fitted
    return groups.GroupDesign(name, yd, xd, workspace.codes(unit)[sample.positions], sample.fe_codes)


def permutation_not_offered(workspace: Workspace, union: Sample, labels: np.ndarray, firm: str, fixed_effects: list[str]) -> str:
    """Why relabelling whole units does not apply to this model ("" when it does)."""
    if firm not in fixed_effects:
        return f"it relabels whole units ({firm}), and the model has no {firm} fixed effect"
    in_group = pd.Series(labels[union.positions], dtype=object).groupby(workspace.values(union, firm)).nunique()  # no type inference: 60 ms
    varying = int((in_group > 1).sum())
    return f"the groups vary within {varying:,} firms, so labels are not exchangeable across firms" if varying else ""


def group_differences(workspace: Workspace, spec: Spec) -> Findings:
    """Wald (fully interacted), suest-style and firm-level permutation tests on the treatment terms."""
    rows: list[tuple[str, HypothesisTest]] = []
    plan = plans(spec)[0]
    terms = [t for t in plan.regressors if t in treatment_terms(spec)]
    fixed_effects = list(spec.model.fixed_effects)
    firm = spec.data.id  # the unit: clusters of the group model, what permutations relabel
    other_fe = [fe for fe in fixed_effects if fe != firm]
    labels = group_labels(workspace, spec.hetero.groups)
    cluster = list(spec.vcov.cluster) if spec.vcov.type.startswith("CRV") and plan.instruments else []
    union = workspace.sample([plan.outcome, *plan.regressors, *plan.instruments, *cluster], fixed_effects, any_group(spec.hetero.groups))
    designs = [group_design(workspace, g, q, plan.outcome, plan.regressors, fixed_effects, firm, plan, spec.vcov)
               for g, q in spec.hetero.groups.items()]
    model = groups.stack_groups(designs, plan.regressors, fixed_effects, firm)
    names = " and ".join(label(t, spec.report.labels) for t in terms)
    notes = [f"Group differences in {names} ({label(firm, spec.report.labels)}-clustered, fully interacted model):"]
    for wald in groups.wald_equality(model, terms):
        rows += [("groups", t) for t in wald.tests()]
        notes.append(f"  Wald, {groups.pair_name(wald.groups)}: chi2({wald.q}) = {wald.chi2:.2f}, p = {wald.p_chi2:.4f}; F({wald.q}, {wald.df_denom}) p = {wald.p_f:.4f}")
    for diff in groups.suest_difference(model, terms):
        rows += [("groups", t) for t in diff.tests()]
        notes.append(f"  suest {label(diff.term, spec.report.labels)}, {groups.pair_name(diff.groups)}: diff = {diff.diff:.4f}, z = {diff.z:.2f}, p = {diff.p:.4f}")
    perm, pairs = spec.hetero.permutation, list(itertools.combinations(spec.hetero.groups, 2))
    why_not = ("it re-estimates each draw by OLS, not 2SLS" if plan.instruments
               else permutation_not_offered(workspace, union, labels, firm, fixed_effects))
    if why_not:
        notes.append(f"  Permutation test not offered: {why_not}.")
        rows += [("groups", not_applicable("bdiff", f"{t}: {groups.pair_name(pair)}", f"{t} no larger in {pair[0]} than in {pair[1]}", why_not))
                 for pair in pairs for t in terms]
        return Findings(tests=rows, notes=notes)
    columns = [plan.outcome, *plan.regressors, *fixed_effects]
    tests = groups.permutation_tests(workspace.frame(union, columns).assign(group=labels[union.positions]),  # no name: freed once read
                                     plan.outcome, plan.regressors, "group", terms, pairs, firm, other_fe, perm.draws, perm.seed)
    for test in tests:
        rows += [("groups", t) for t in test.tests()]
        ps = ", ".join(f"{label(t, spec.report.labels)} p = {p:.3f}" for t, p in zip(test.terms, test.p_upper))
        notes.append(f"  Permutation (bdiff, {perm.draws} firm-level draws, seed {perm.seed}), {groups.pair_name(test.groups)}: one-sided {ps}")
    return Findings(tests=rows, notes=notes)
