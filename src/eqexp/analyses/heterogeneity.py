"""Groups side by side (Tables 8–11) and the tests that their treatment effects differ:
fully interacted Wald, suest-style differences, firm-level permutation (methods §5)."""

from __future__ import annotations

import itertools
import numpy as np
import pandas as pd

from eqexp.analyses.findings import Findings
from eqexp.analyses.statistics import test_rows
from eqexp.estimate import Workspace
from eqexp.inference import groups
from eqexp.models import plans, treatment_terms
from eqexp.spec import Spec, SpecError
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


def _pair(groups: tuple) -> str:
    return " vs ".join(map(str, groups))


def group_design(workspace: Workspace, name: str, query: str, outcome: str, regressors: list[str], fixed_effects: list[str], unit: str) -> groups.GroupDesign:
    """A group's estimation sample as the interacted model sees it (its absorbed columns are the group fit's)."""
    sample = workspace.sample([outcome, *regressors], fixed_effects, query)
    block = workspace.absorbed(sample, [outcome, *regressors])
    return groups.GroupDesign(name, block[:, 0], block[:, 1:], workspace.codes(unit)[sample.positions], sample.fe_codes)


def group_differences(workspace: Workspace, spec: Spec) -> Findings:
    """Wald (fully interacted), suest-style and firm-level permutation tests on the treatment terms."""
    rows: list[dict] = []
    plan = plans(spec)[0]
    terms = [t for t in plan.regressors if t in treatment_terms(spec)]
    fixed_effects = list(spec.model.fixed_effects)
    firm = spec.data.id  # the unit: clusters of the group model, what permutations relabel
    other_fe = [fe for fe in fixed_effects if fe != firm]
    labels = group_labels(workspace, spec.hetero.groups)
    union = workspace.sample([plan.outcome, *plan.regressors], fixed_effects, any_group(spec.hetero.groups))
    designs = [group_design(workspace, g, q, plan.outcome, plan.regressors, fixed_effects, firm) for g, q in spec.hetero.groups.items()]
    model = groups.stack_groups(designs, plan.regressors, fixed_effects, firm)
    names = " and ".join(label(t, spec.report.labels) for t in terms)
    notes = [f"Group differences in {names} ({label(firm, spec.report.labels)}-clustered, fully interacted model):"]
    for wald in groups.wald_equality(model, terms):
        rows += test_rows("groups", "wald", wald.to_dict())
        notes.append(f"  Wald, {_pair(wald.groups)}: chi2({wald.q}) = {wald.chi2:.2f}, p = {wald.p_chi2:.4f}; F({wald.q}, {wald.df_denom}) p = {wald.p_f:.4f}")
    for diff in groups.suest_difference(model, terms):
        rows += test_rows("groups", "suest", diff.to_dict())
        notes.append(f"  suest {label(diff.term, spec.report.labels)}, {_pair(diff.groups)}: diff = {diff.diff:.4f}, z = {diff.z:.2f}, p = {diff.p:.4f}")
    perm = spec.hetero.permutation
    if firm not in fixed_effects:
        notes.append(f"  Permutation test not offered: it relabels whole units ({firm}), and the model has no {firm} fixed effect.")
        return Findings(tests=rows, notes=notes)
    in_group = pd.Series(labels[union.positions]).groupby(workspace.values(union, firm)).nunique()
    varying = int((in_group > 1).sum())
    if varying:
        notes.append(f"  Permutation test not offered: the groups vary within {varying:,} firms, so labels are not exchangeable across firms.")
        return Findings(tests=rows, notes=notes)
    pairs = list(itertools.combinations(spec.hetero.groups, 2))
    columns = [plan.outcome, *plan.regressors, *fixed_effects]
    tests = groups.permutation_tests(workspace.frame(union, columns).assign(group=labels[union.positions]),  # no name: freed once read
                                     plan.outcome, plan.regressors, "group", terms, pairs, firm, other_fe, perm.draws, perm.seed)
    for test in tests:
        rows += test_rows("groups", "bdiff", {f"{_pair(test.groups)}.{k.removeprefix('bdiff.')}": v for k, v in test.to_dict().items()})
        ps = ", ".join(f"{label(t, spec.report.labels)} p = {p:.3f}" for t, p in zip(test.terms, test.p_upper))
        notes.append(f"  Permutation (bdiff, {perm.draws} firm-level draws, seed {perm.seed}), {_pair(test.groups)}: one-sided {ps}")
    return Findings(tests=rows, notes=notes)
