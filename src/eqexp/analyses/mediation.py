"""The three-step mediation's tests (methods §4): Sobel and variants, the firm-cluster bootstrap
of the indirect effect, the instantaneous effect along the treatment, Wen–Ye's decision."""

from __future__ import annotations

from eqexp.analyses.findings import Findings
from eqexp.estimate import Fit, Workspace
from eqexp.inference import mediation as mediation_tests
from eqexp.models import control_terms
from eqexp.panel import stata_percentile
from eqexp.spec import Spec

def mediation(workspace: Workspace, spec: Spec, fits: list[Fit]) -> Findings:
    """Sobel (and variants), the firm-cluster bootstrap of the indirect effect, Wen–Ye."""
    total, path_a, direct = fits
    x, m, med = spec.model.treatment, spec.mediator.variable, spec.mediator
    firm = spec.data.id  # the bootstrap resamples whole units
    other_fe = [fe for fe in spec.model.fixed_effects if fe != firm]
    a, b, c = path_a.tidy.set_index("term"), direct.tidy.set_index("term"), total.tidy.set_index("term")
    sobel = mediation_tests.sobel_tests(a.at[x, "estimate"], a.at[x, "std_error"], b.at[m, "estimate"], b.at[m, "std_error"])
    controls = control_terms(spec, spec.model.controls)
    rows_used = workspace.sample([spec.model.outcome, m, *direct.regressors], spec.model.fixed_effects)
    sample = workspace.frame(rows_used, [spec.model.outcome, m, x, *controls, *spec.model.fixed_effects])
    at = {f"P{q}": stata_percentile(sample[x], q) for q in (10, 50, 90)}
    boot = mediation_tests.bootstrap_indirect(
        sample, spec.model.outcome, m, x, spec.model.square, med.square, controls,
        firm, other_fe, med.bootstrap.draws, med.bootstrap.seed, at, med.bootstrap.alpha)
    decision = mediation_tests.wen_ye_test(
        c.at[x, "estimate"], c.at[x, "p_value"], a.at[x, "estimate"], a.at[x, "p_value"], b.at[m, "estimate"], b.at[m, "p_value"],
        b.at[x, "estimate"], b.at[x, "p_value"], tuple(boot.bias_corrected[0]), med.bootstrap.alpha)
    tests = [*sobel, *boot.tests(), decision]
    level = f"{100 * (1 - med.bootstrap.alpha):g}%"
    thetas = "; ".join(f"{point} ({value:.3f}): {e:.5f} [{lo:.5f}, {hi:.5f}]"
                       for (point, value), e, (lo, hi) in zip(at.items(), boot.estimate[1:], boot.percentile[1:]))
    return Findings(tests=[("mediation", t) for t in tests], notes=[
        f"Sobel z = {sobel[0].statistic:.2f} (p = {sobel[0].p_value:.4f}); Aroian z = {sobel[1].statistic:.2f}; Goodman z = {sobel[2].statistic:.2f}",
        f"Indirect effect a·b = {boot.estimate[0]:.5f}; firm-cluster bootstrap ({med.bootstrap.draws} draws, seed {med.bootstrap.seed}) "
        f"{level} percentile CI [{boot.percentile[0, 0]:.5f}, {boot.percentile[0, 1]:.5f}], bias-corrected [{boot.bias_corrected[0, 0]:.5f}, {boot.bias_corrected[0, 1]:.5f}]",
        f"Instantaneous indirect effect θ(x) = (a1 + 2·a2·x)·b at {thetas}",
        f"Wen–Ye decision: {decision.verdict}",
    ])
