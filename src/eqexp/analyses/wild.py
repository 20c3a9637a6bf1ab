"""The wild cluster bootstrap (`vcov.bootstrap`) of every fitted model's treatment terms:
p-values and intervals under the table, in tests.csv (test `wild`) and in MLflow."""

from __future__ import annotations

from eqexp.analyses.findings import Findings
from eqexp.estimate import Fit, Workspace
from eqexp.inference.wild import FEW_CLUSTERS, WildBootstrap, WildDesign, WildError, WildResult
from eqexp.models import Plan
from eqexp.spec import Spec, SpecError
from eqexp.terms import base_variable, label


def wild_design(workspace: Workspace, fit: Fit, cluster: str, query: str | None) -> WildDesign:
    """The fit's estimation sample, absorbed (the fit's own cached columns), with its cluster codes."""
    sample = workspace.sample([fit.outcome, *fit.regressors, cluster], fit.fixed_effects, query)
    block = workspace.absorbed(sample, [fit.outcome, *fit.regressors])
    return WildDesign(block[:, 0], block[:, 1:], tuple(fit.regressors), workspace.sample_codes(sample.positions, [cluster])[:, 0],
                      sample.fe_codes, tuple(fit.fixed_effects))


def _note(fit: Fit, result: WildResult, labels: dict[str, str], cluster: str) -> str:
    level = f"{100 * (1 - result.alpha):g}%"
    terms = "; ".join(f"{label(t.term, labels)} p = {t.p_value:.4f}, {level} CI [{t.ci_low:.4g}, {t.ci_high:.4g}]" for t in result.terms)
    joint = f"; joint p = {result.joint.p_value:.4f}" if result.joint else ""
    draws = (f"all {result.draws:,} Rademacher sign patterns" if result.enumerated
             else f"{result.draws:,} {result.weights.capitalize()} draws, seed {result.seed}")
    why = f" (Webb weights: fewer than {FEW_CLUSTERS} clusters)" if result.weights == "webb" and result.n_clusters < FEW_CLUSTERS else ""
    return f"Wild cluster bootstrap {fit.model} (WCR, {draws}, {result.n_clusters} {label(cluster, labels)} clusters{why}): {terms}{joint}"


def wild_tests(workspace: Workspace, spec: Spec, planned: list[Plan], fits: list[Fit]) -> Findings:
    """Bootstrap every fit's treatment terms (and their joint test) when `vcov.bootstrap` asks for it."""
    boot = spec.vcov.bootstrap
    if boot is None:
        return Findings()
    cluster, queries, rows, notes = spec.vcov.cluster[0], {p.model: p.query for p in planned}, [], []
    for fit in fits:
        terms = [r for r in fit.regressors if base_variable(r) == spec.model.treatment]
        if not terms:
            continue
        try:
            bootstrap = WildBootstrap(wild_design(workspace, fit, cluster, queries.get(fit.model)), fit.tidy["estimate"].to_numpy(),
                                      fit.vcov, boot.weights, boot.draws, boot.seed, boot.alpha)
        except WildError as err:
            raise SpecError(f"Wild bootstrap of model {fit.model}: {err}") from None
        result = bootstrap.run(terms)
        rows += [(fit.model, t) for t in result.tests()]
        notes.append(_note(fit, result, spec.report.labels, cluster))
    return Findings(tests=rows, notes=notes)
