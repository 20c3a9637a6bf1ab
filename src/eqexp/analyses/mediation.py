"""The three-step mediation's tests (methods §4): Sobel and variants, the firm-cluster bootstrap
of the indirect effect, the instantaneous effect along the treatment, Wen–Ye's decision."""

from __future__ import annotations

import pandas as pd

from eqexp.analyses.findings import Findings
from eqexp.estimate import Fit, Sample, Workspace
from eqexp.inference import mediation as mediation_tests
from eqexp.models import control_terms
from eqexp.panel import stata_percentile
from eqexp.spec import Spec


def mediation(workspace: Workspace, spec: Spec, fits: list[Fit]) -> Findings:
    """Sobel (and variants), the firm-cluster bootstrap of the indirect effect, Wen–Ye."""
    total, path_a, direct = fits
    x, m, med = spec.model.treatment, spec.mediator.variable, spec.mediator
    a, b, c = path_a.tidy.set_index("term"), direct.tidy.set_index("term"), total.tidy.set_index("term")
    sobel = mediation_tests.sobel_tests(a.at[x, "estimate"], a.at[x, "std_error"], b.at[m, "estimate"], b.at[m, "std_error"])
    controls = control_terms(spec, spec.model.controls)
    rows_used = workspace.sample([spec.model.outcome, m, *direct.regressors], spec.model.fixed_effects)
    treatment = pd.Series(workspace.values(rows_used, x))
    at = {f"P{q}": stata_percentile(treatment, q) for q in (10, 50, 90)}
    drawn, shared = drawn_moments(workspace, rows_used, spec, controls)
    boot = mediation_tests.indirect_effects(drawn, spec.model.outcome, m, x, spec.model.square, med.square, controls, at, med.bootstrap.alpha)
    decision = mediation_tests.wen_ye_test(
        c.at[x, "estimate"], c.at[x, "p_value"], a.at[x, "estimate"], a.at[x, "p_value"], b.at[m, "estimate"], b.at[m, "p_value"],
        b.at[x, "estimate"], b.at[x, "p_value"], tuple(boot.bias_corrected[0]), med.bootstrap.alpha)
    tests = [*sobel, *boot.tests(), decision]
    level = f"{100 * (1 - med.bootstrap.alpha):g}%"
    thetas = "; ".join(f"{point} ({value:.3f}): {e:.5f} [{lo:.5f}, {hi:.5f}]"
                       for (point, value), e, (lo, hi) in zip(at.items(), boot.estimate[1:], boot.percentile[1:]))
    return Findings(tests=[("mediation", t) for t in tests], notes=[
        f"Sobel z = {sobel[0].statistic:.2f} (p = {sobel[0].p_value:.4f}); Aroian z = {sobel[1].statistic:.2f}; Goodman z = {sobel[2].statistic:.2f}",
        f"Indirect effect a·b = {boot.estimate[0]:.5f}; firm-cluster bootstrap ({med.bootstrap.draws} draws, seed {med.bootstrap.seed}{shared}) "
        f"{level} percentile CI [{boot.percentile[0, 0]:.5f}, {boot.percentile[0, 1]:.5f}], bias-corrected [{boot.bias_corrected[0, 0]:.5f}, {boot.bias_corrected[0, 1]:.5f}]",
        f"Instantaneous indirect effect θ(x) = (a1 + 2·a2·x)·b at {thetas}",
        f"Wen–Ye decision: {decision.verdict}",
    ])


def drawn_moments(workspace: Workspace, rows_used: Sample, spec: Spec, controls: list[str]) -> tuple[mediation_tests.DrawnMoments, str]:
    """The bootstrap's drawn moments of the mediation's columns on `rows_used`, also summing those
    of the mediators in `share_with` that the sample holds in full, and a note when they came
    from an earlier job of this worker (the same rows, draws and seed: the same resampled firms)."""
    x, m, med = spec.model.treatment, spec.mediator.variable, spec.mediator
    firm = spec.data.id  # the bootstrap resamples whole units
    other_fe = [fe for fe in spec.model.fixed_effects if fe != firm]
    square = spec.model.square or med.square
    needed = mediation_tests.bootstrap_columns(x, square, controls, [m])
    key = (rows_used.key, spec.model.outcome, firm, tuple(other_fe), med.bootstrap.draws, med.bootstrap.seed)
    shared = workspace.shared  # the process's cache: a later job on the same sample and draws with another mediator
    cached = shared.kept("drawn", key) if shared is not None else None
    if cached is not None and set(needed) <= set(cached.moments.x):
        return cached, ", shared with an earlier job on the same sample"
    others = [c for c in med.bootstrap.share_with if c not in needed and workspace.present(c)[rows_used.positions].all()]
    columns = mediation_tests.bootstrap_columns(x, square, controls, [m, *others])
    read = [spec.model.outcome, *[c for c in columns if c != mediation_tests.bootstrap_square_column(x)], firm, *other_fe]
    drawn = mediation_tests.bootstrap_moments(workspace.frame(rows_used, read),  # no name: freed once its moments are built
                                              spec.model.outcome, columns, firm, other_fe, med.bootstrap.draws, med.bootstrap.seed)
    if shared is not None:
        shared.keep("drawn", key, drawn)
    return drawn, ""
