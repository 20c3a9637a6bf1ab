"""The inverted-U tests on every fitted model with a squared treatment, under the table, in
tests.csv and as figures: Lind–Mehlum's (`utest`) and Simonsohn's two lines."""

from __future__ import annotations


import numpy as np

from eqexp.analyses.findings import Findings
from eqexp.estimate import Fit, Workspace, fast_path_serves, least_squares_of
from eqexp.inference import two_lines as tl
from eqexp.inference.hypothesis import not_applicable
from eqexp.inference.utest import UTestResult, utest
from eqexp.models import Plan
from eqexp.report.figures import Drawing, inverted_u_figure, two_lines_figure
from eqexp.report.language import text, word
from eqexp.spec import Spec, VcovSpec
from eqexp.terms import label, squared
from eqexp.tracking import metric_name

def inverted_u(fit: Fit) -> tuple[str, np.ndarray, UTestResult] | None:
    """For a fit whose regressors include `x` and `x_sq`: x, the covariance of (b_x, b_x_sq) and the utest."""
    square = next((r for r in fit.regressors if squared(r) in fit.regressors), None)
    if square is None:
        return None
    x = squared(square)
    i, j = fit.regressors.index(x), fit.regressors.index(square)
    vcov = fit.vcov[np.ix_([i, j], [i, j])]
    low, high = fit.ranges[x]
    return x, vcov, utest(fit.coef(x), fit.coef(square), vcov, low, high, fit.df_t)


def two_lines(workspace: Workspace, fit: Fit, x: str, vcov: VcovSpec, query: str | None) -> tuple[tl.TwoLinesResult, tl.Curve]:
    """Simonsohn's two-lines test of the fit's U shape in `x`, with its fixed effects, controls and vcov."""
    square = next(r for r in fit.regressors if squared(r) == x)
    controls = [r for r in fit.regressors if r not in (x, square)]
    cluster = list(vcov.cluster) if vcov.type.startswith("CRV") else []
    sample = workspace.sample([fit.outcome, *fit.regressors, *cluster], fit.fixed_effects, query)
    values = workspace.values(sample, x).astype(np.float64)
    shape = tl.shape_of(fit.coef(x), fit.coef(square), float(values.min()))

    # The flexible fit, evaluated on x's distinct values (few: x varies by province-year).
    distinct, inverse = np.unique(values, return_inverse=True)
    knots = tl.spline_knots(values)
    basis = tl.spline_basis(distinct, knots)
    curved = basis[inverse, 1:]  # x itself is a panel column (absorbed once, cached)
    flexible = least_squares_of(workspace, sample, fit.outcome, [x, *controls], vcov,
                                {f"spline{j}": column for j, column in enumerate(curved.T)})
    k = basis.shape[1]
    order = [k - 1, *range(k - 1)]  # basis order: x, then the curved terms
    gamma, v = flexible.coef[order], flexible.vcov[np.ix_(order, order)]
    mean = np.concatenate([[values.mean()], curved.mean(0)])

    def predict(at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = tl.spline_basis(at, knots) - mean
        return centred @ gamma, np.sqrt(np.einsum("ij,jk,ik->i", centred, v, centred))

    yhat, se = predict(distinct)
    flat = tl.flat_region(values, yhat[inverse], se[inverse], shape)

    def slopes(breakpoint: float, line: int) -> tuple[tl.Line, tl.Line]:
        """Both slopes (x_low, x_high) of the interrupted regression whose segment `line` holds the breakpoint."""
        result = least_squares_of(workspace, sample, fit.outcome, controls, vcov, tl.segments(values, breakpoint, line))
        return tuple(tl.Line(float(result.coef[j]), float(result.statistic[j]), float(result.p_value[j]), result.df_t) for j in (0, 1))

    def lines(breakpoint: float) -> tuple[tl.Line, tl.Line]:
        """b1 from line 1, b2 from line 2: one regression when no x sits on the breakpoint (the two lines are the same)."""
        first, second = slopes(breakpoint, 1)
        return (first, slopes(breakpoint, 2)[1]) if np.any(values == breakpoint) else (first, second)

    middle = float(np.median(flat))
    first, second = lines(middle)
    breakpoint = tl.robin_hood(flat, first.t, second.t)
    first, second = lines(breakpoint)
    result = tl.TwoLinesResult(shape, breakpoint, middle, float(flat.min()), float(flat.max()), first, second,
                               int((values <= breakpoint).sum()), int((values > breakpoint).sum()))
    grid = np.linspace(values.min(), values.max(), 200)
    return result, tl.Curve(grid, *predict(grid))


def inverted_u_tests(workspace: Workspace, spec: Spec, planned: list[Plan], fits: list[Fit]) -> Findings:
    """Lind–Mehlum's test and Simonsohn's two lines on every fit with a square: rows, notes and (report.figures) figures."""
    rows, notes, figures = [], [], {}
    queries = {p.model: p.query for p in planned}
    for f in fits:
        found = inverted_u(f)
        if found is None:
            continue
        x, vcov, test = found
        rows += [(f.model, t) for t in test.tests()]
        name, outcome = label(x, spec.report.labels), label(f.outcome, spec.report.labels)
        notes.append(f"Inverted-U test {f.model} ({name}): {test.verdict}")
        title = f"{f.model} {text(f.sample, spec.report.labels)}: {name}{word(' and ', spec.report.labels)}{outcome}"
        if spec.report.figures:
            values = workspace.array(x)[workspace.rows(queries.get(f.model))]
            figures[f"inverted_u_{metric_name(f.model)}.png"] = Drawing(inverted_u_figure, (test, vcov, values[~np.isnan(values)], name, title,
                                                                                        spec.report.labels))
        if not spec.model.two_lines:
            continue
        if not fast_path_serves(spec.vcov):
            rows.append((f.model, not_applicable("two_lines", "u_shape", "no U shape", f"not offered for {spec.vcov.type} standard errors")))
            notes.append(f"Two-lines test {f.model}: not offered for {spec.vcov.type} standard errors.")
            continue
        lines, curve = two_lines(workspace, f, x, spec.vcov, queries.get(f.model))
        rows += [(f.model, t) for t in lines.tests()]
        notes.append(f"Two-lines test {f.model} ({name}, breakpoint by Robin Hood in the flat region "
                     f"[{lines.flat_low:.4g}, {lines.flat_high:.4g}]): {lines.verdict}")
        if spec.report.figures:
            figures[f"two_lines_{metric_name(f.model)}.png"] = Drawing(two_lines_figure, (lines, curve, name, title, spec.report.labels))
    return Findings(tests=rows, notes=notes, figures=figures)
