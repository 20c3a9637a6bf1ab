"""The analyses a job can ask for, each filling the job's fits, tests and tables.

- regression: the columns of `model.columns` (Tables 4 and 5);
- heterogeneity: one column per group plus the group-difference tests (Tables 8–11);
- mediation: the three equations plus Sobel and the bootstrap (Tables 6–7);
- descriptives and correlations (Tables 2 and 3).
Every model with a squared treatment gets the Lind–Mehlum inverted-U test.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import itertools

import numpy as np
import pandas as pd

from eqexp.estimate import DEMEANER, Fit, estimation_sample, fit
from eqexp.inference import groups
from eqexp.inference import mediation as mediation_tests
from eqexp.spec import Spec, SpecError, base_variable
from eqexp.tracking import metric_name
from eqexp.inference.utest import utest
from eqexp.report.descriptives import correlation_table, correlations, describe, descriptives_table
from eqexp.models import control_terms, plans, treatment_terms
from eqexp.panel import stata_percentile
from eqexp.report.figures import inverted_u_figure
from eqexp.report.regression import label, regression_table

if TYPE_CHECKING:
    from eqexp.runner import JobResult


def fit_plans(df: pd.DataFrame, spec: Spec) -> list[Fit]:
    fits = []
    for plan in plans(spec):
        rows = df.query(plan.query) if plan.query else df
        print(f"[eqexp] estimating {plan.model} {plan.label or plan.outcome}: {len(rows):,} rows", flush=True)
        fits.append(fit(rows, plan.outcome, plan.regressors, spec.model.fixed_effects, spec.vcov, plan.model, plan.label or spec.sample.label))
    return fits


def test_rows(model: str, test: str, values: dict) -> list[dict]:
    """Long format of tests.csv: one row per (model, test, statistic); `test.` key prefixes are dropped."""
    return [{"model": model, "test": test, "statistic": k.removeprefix(f"{test}."), "value": v} for k, v in values.items()]


def inverted_u(fit: Fit) -> tuple[str, str, object] | None:
    """The utest of a fit whose regressors include `x` and `x_sq`, or None."""
    square = next((r for r in fit.regressors if r.endswith("_sq") and r[:-3] in fit.regressors), None)
    if square is None:
        return None
    x = square[:-3]
    i, j = fit.regressors.index(x), fit.regressors.index(square)
    vcov = fit.vcov[np.ix_([i, j], [i, j])]
    low, high = fit.ranges[x]
    return x, square, utest(fit.coef(x), fit.coef(square), vcov, low, high, fit.df_t)


def utest_notes(df: pd.DataFrame, spec: Spec, result: JobResult, rows: list[dict]) -> list[str]:
    """Run the inverted-U test on every fit with a square; note it, log it, draw it."""
    notes = []
    queries = {p.model: p.query for p in plans(spec)}
    for f in result.fits:
        found = inverted_u(f)
        if found is None:
            continue
        x, square, test = found
        rows += test_rows(f.model, "utest", test.to_dict())
        notes.append(f"Inverted-U test {f.model} ({x}): {test.verdict}")
        i, j = f.regressors.index(x), f.regressors.index(square)
        values = (df.query(queries[f.model]) if queries.get(f.model) else df)[x].dropna().to_numpy()
        name = label(x, spec.report.labels)
        inverted_u_figure(test, f.vcov[np.ix_([i, j], [i, j])], values, name, f"{f.model} {f.sample}: {name} and {label(f.outcome, spec.report.labels)}",
                          result.out_dir / "figures" / f"inverted_u_{metric_name(f.model)}.png")
    return notes


def group_column(df: pd.DataFrame, groups: dict[str, str]) -> pd.Series:
    """Each row's group label from the groups' queries; rows in two groups are an error."""
    masks = {g: df.eval(q).to_numpy(bool) for g, q in groups.items()}
    overlap = int((np.sum(list(masks.values()), axis=0) > 1).sum())
    if overlap:
        raise SpecError(f"{overlap:,} rows belong to more than one group of hetero.groups; make the queries exclusive.")
    return pd.Series(np.select(list(masks.values()), list(masks), default=None), index=df.index, name="group")


def _pair(groups: tuple) -> str:
    return " vs ".join(map(str, groups))


def group_differences(df: pd.DataFrame, spec: Spec, result: JobResult, rows: list[dict]) -> list[str]:
    """Wald (fully interacted), suest-style and firm-level permutation tests on the treatment terms."""
    plan = plans(spec)[0]
    terms = [t for t in plan.regressors if t in treatment_terms(spec)]
    firm, *other_fe = spec.model.fixed_effects
    data = df.assign(group=group_column(df, spec.hetero.groups)).dropna(subset=["group"])
    data, _ = estimation_sample(data, [plan.outcome, *plan.regressors], spec.model.fixed_effects)
    model = groups.interacted_model(data, plan.outcome, plan.regressors, "group", firm, other_fe, demeaner=DEMEANER)
    names = " and ".join(label(t, spec.report.labels) for t in terms)
    notes = [f"Group differences in {names} (firm-clustered, fully interacted model):"]
    for wald in groups.wald_equality(model, terms):
        rows += test_rows("groups", "wald", wald.to_dict())
        notes.append(f"  Wald, {_pair(wald.groups)}: chi2({wald.q}) = {wald.chi2:.2f}, p = {wald.p_chi2:.4f}; F({wald.q}, {wald.df_denom}) p = {wald.p_f:.4f}")
    for diff in groups.suest_difference(model, terms):
        rows += test_rows("groups", "suest", diff.to_dict())
        notes.append(f"  suest {label(diff.term, spec.report.labels)}, {_pair(diff.groups)}: diff = {diff.diff:.4f}, z = {diff.z:.2f}, p = {diff.p:.4f}")
    perm = spec.hetero.permutation
    varying = int((data.groupby(firm)["group"].nunique() > 1).sum())
    if varying:
        notes.append(f"  Permutation test not offered: the groups vary within {varying:,} firms, so labels are not exchangeable across firms.")
        return notes
    for pair in itertools.combinations(spec.hetero.groups, 2):
        test = groups.permutation_test(data[data.group.isin(pair)], plan.outcome, plan.regressors, "group", terms, firm, other_fe, perm.draws, perm.seed)
        rows += test_rows("groups", "bdiff", {f"{_pair(test.groups)}.{k.removeprefix('bdiff.')}": v for k, v in test.to_dict().items()})
        ps = ", ".join(f"{label(t, spec.report.labels)} p = {p:.3f}" for t, p in zip(test.terms, test.p_upper))
        notes.append(f"  Permutation (bdiff, {perm.draws} firm-level draws, seed {perm.seed}), {_pair(test.groups)}: one-sided {ps}")
    return notes


def mediation(df: pd.DataFrame, spec: Spec, result: JobResult, rows: list[dict]) -> list[str]:
    """Sobel (and variants), the firm-cluster bootstrap of the indirect effect, Wen–Ye."""
    total, path_a, direct = result.fits
    x, m, med = spec.model.treatment, spec.mediator.variable, spec.mediator
    firm, *other_fe = spec.model.fixed_effects
    a, b, c = path_a.tidy.set_index("term"), direct.tidy.set_index("term"), total.tidy.set_index("term")
    sobel = mediation_tests.sobel(a.at[x, "estimate"], a.at[x, "std_error"], b.at[m, "estimate"], b.at[m, "std_error"])
    rows += test_rows("mediation", "sobel", sobel)
    sample, _ = estimation_sample(df, [spec.model.outcome, m, *direct.regressors], spec.model.fixed_effects)
    at = {f"P{q}": stata_percentile(sample[x], q) for q in (10, 50, 90)}
    boot = mediation_tests.bootstrap_indirect(
        sample, spec.model.outcome, m, x, spec.model.square, med.square, control_terms(spec, spec.model.controls),
        firm, other_fe, med.bootstrap.draws, med.bootstrap.seed, at, med.bootstrap.alpha)
    rows += test_rows("mediation", "mediation", boot.to_dict())
    share = mediation_tests.proportion_mediated(a.at[x, "estimate"], b.at[m, "estimate"], c.at[x, "estimate"])
    decision = mediation_tests.wen_ye_decision(
        c.at[x, "estimate"], c.at[x, "p_value"], a.at[x, "estimate"], a.at[x, "p_value"], b.at[m, "estimate"], b.at[m, "p_value"],
        b.at[x, "estimate"], b.at[x, "p_value"], tuple(boot.bias_corrected[0]), med.bootstrap.alpha)
    rows += test_rows("mediation", "decision", {"proportion_mediated": share, "wen_ye": decision})
    level = f"{100 * (1 - med.bootstrap.alpha):g}%"
    thetas = "; ".join(f"{point} ({value:.3f}): {e:.5f} [{lo:.5f}, {hi:.5f}]"
                       for (point, value), e, (lo, hi) in zip(at.items(), boot.estimate[1:], boot.percentile[1:]))
    return [
        f"Sobel z = {sobel['sobel_z']:.2f} (p = {sobel['sobel_p']:.4f}); Aroian z = {sobel['aroian_z']:.2f}; Goodman z = {sobel['goodman_z']:.2f}",
        f"Indirect effect a·b = {boot.estimate[0]:.5f}; firm-cluster bootstrap ({med.bootstrap.draws} draws, seed {med.bootstrap.seed}) "
        f"{level} percentile CI [{boot.percentile[0, 0]:.5f}, {boot.percentile[0, 1]:.5f}], bias-corrected [{boot.bias_corrected[0, 0]:.5f}, {boot.bias_corrected[0, 1]:.5f}]",
        f"Instantaneous indirect effect θ(x) = (a1 + 2·a2·x)·b at {thetas}",
        f"Wen–Ye decision: {decision}",
    ]


def regression(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    result.fits = fit_plans(df, spec)
    rows: list[dict] = []
    notes = utest_notes(df, spec, result, rows)
    if spec.hetero.groups:
        notes += group_differences(df, spec, result, rows)
    if spec.mediator.variable:
        notes += mediation(df, spec, result, rows)
    result.tests = pd.DataFrame(rows, columns=["model", "test", "statistic", "value"])
    labels = [p.label for p in plans(spec)]
    result.tables["table"] = regression_table(
        result.fits,
        spec.report.title or spec.model.name,
        spec.report.labels,
        spec.report.stat,
        spec.report.digits,
        first_terms=[t for p in plans(spec) for t in p.regressors if base_variable(t) == spec.model.treatment],
        groups=labels if any(labels) else None,
        notes=notes,
    )


def descriptives(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    summary = describe(df, spec.report.descriptives)
    result.tests = summary.melt(id_vars="variable", var_name="statistic").rename(columns={"variable": "model"}).assign(test="describe")
    result.tables["table"] = descriptives_table(summary, spec.report.labels, spec.report.title or "Descriptive statistics")


def correlation(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    r, p = correlations(df, spec.report.descriptives)
    long = r.stack().rename("value").reset_index().set_axis(["model", "statistic", "value"], axis=1)
    result.tests = long.assign(test="corr", statistic="corr." + long.statistic)
    result.tables["table"] = correlation_table(r, p, spec.report.labels, spec.report.title or "Correlation analysis")


ANALYSES = {"regression": regression, "descriptives": descriptives, "correlations": correlation}


def run(df: pd.DataFrame, spec: Spec, result: JobResult) -> None:
    """Dispatch on the kind of analysis the spec asks for."""
    ANALYSES[spec.analysis](df, spec, result)
