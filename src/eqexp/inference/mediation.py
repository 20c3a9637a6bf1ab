"""Three-step mediation (methods §4): Sobel-type tests, firm-cluster bootstrap, Wen & Ye.

Equations, all with the same FE, controls, sample and cluster:
(1) Y = cX [+ c2X²] + Z, (2) M = aX [+ a2X²] + Z, (3) Y = c′X [+ c2′X²] + bM + Z.
The runner estimates them with pyfixest; this module adds what Stata's `sgmediation`
and the Chinese exposition report on top.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eqexp.distributions import norm_cdf, norm_ppf, norm_sf
from eqexp.inference.extreme import share_at_least
from eqexp.inference.hypothesis import NAN, HypothesisTest, interval_test, p_test
from eqexp.inference.firm_moments import (
    FirmMoments,
    Progress,
    bootstrap_weights,
    check_columns,
    print_progress,
    run_draws,
)


def sobel(a: float, se_a: float, b: float, se_b: float) -> dict[str, float]:
    """Sobel, Aroian (+s_a²s_b²) and Goodman (−s_a²s_b²) z for a·b, normal two-sided p.

    Goodman's variance can be negative; its se, z and p are then NaN.
    """
    base = a**2 * se_b**2 + b**2 * se_a**2
    out = {"ab": float(a * b)}
    for name, var in [
        ("sobel", base),
        ("aroian", base + se_a**2 * se_b**2),
        ("goodman", base - se_a**2 * se_b**2),
    ]:
        se = math.sqrt(var) if var > 0 else math.nan
        z = float(a * b / se)
        out |= {f"{name}_se": se, f"{name}_z": z, f"{name}_p": float(2 * norm_sf(abs(z)))}
    return out


def sobel_tests(a: float, se_a: float, b: float, se_b: float) -> list[HypothesisTest]:
    """`sobel`'s three z tests of a·b = 0 in the one shape."""
    found = sobel(a, se_a, b, se_b)
    return [p_test(name, "ab", "a·b = 0 (no indirect effect)", found[f"{name}_z"], found[f"{name}_p"], "normal", estimate=found["ab"],
                   se=found[f"{name}_se"]) for name in ("sobel", "aroian", "goodman")]


def percentile_ci(draws: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """[Q_{α/2}, Q_{1−α/2}] of each column (numpy's default linear quantiles): (k, 2)."""
    return np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0).T


def bias_corrected_ci(draws: np.ndarray, estimate: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Bias-corrected percentile CI per column: (k, 2).

    z0 = Φ⁻¹(#{θ* < θ̂}/B), a draw tied with θ̂ not counted as below it (`extreme`: ties
    do not depend on rounding); bounds are the Φ(2z0 − z_{1−α/2}) and Φ(2z0 + z_{1−α/2})
    quantiles of the draws (if no draw, or every draw, is below θ̂, z0 = ∓∞ and the
    interval collapses to the draws' minimum or maximum).
    """
    z0 = norm_ppf(1 - share_at_least(draws, estimate))
    z = norm_ppf(1 - alpha / 2)
    levels = norm_cdf(np.stack([2 * z0 - z, 2 * z0 + z], axis=-1))
    return np.array([np.quantile(col, q) for col, q in zip(draws.T, levels)])


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class BootstrapResult:
    """Firm-cluster bootstrap of the indirect effect(s).

    names[j] labels column j: "ab" = a1·b (a1 the linear X coefficient of eq 2), then
    "theta_<label>" = (a1 + 2a2·x)·b at each point of `at`.
    """

    names: tuple[str, ...]
    estimate: np.ndarray
    draws: np.ndarray
    se: np.ndarray
    percentile: np.ndarray
    bias_corrected: np.ndarray
    alpha: float
    seed: int
    at: Mapping[str, float]  # θ's name -> the treatment's value it is evaluated at

    def tests(self) -> list[HypothesisTest]:
        """Per quantity (a·b, then θ at each point): is it 0? By the percentile and by the bias-corrected interval."""
        out = []
        for j, name in enumerate(self.names):
            more = {"se": float(self.se[j]), "point": self.at.get(name, NAN), "draws": len(self.draws), "seed": self.seed, "alpha": self.alpha}
            for test, interval, kind in (("bootstrap_percentile", self.percentile, "percentile"),
                                         ("bootstrap_bc", self.bias_corrected, "bias-corrected")):
                out.append(interval_test(test, name, f"{name} = 0 (no indirect effect)", float(self.estimate[j]), *map(float, interval[j]),
                                         f"{kind} bootstrap", **more))
        return out


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class DrawnMoments:
    """A firm-cluster bootstrap's per-firm moments summed over the sample (`total`) and over each
    draw's firms (`drawn`, draws × p × p): any equation among their columns solves its draws
    from them, so mediators on the same sample and draws share one set (`bootstrap_columns` of all)."""

    moments: FirmMoments  # the columns' names and dummies (its per-firm entries are not kept)
    total: np.ndarray
    drawn: np.ndarray
    seed: int


def bootstrap_square_column(treatment: str) -> str:
    """The bootstrap's name for the squared treatment, which `bootstrap_moments` computes itself (not the
    panel's `terms.square_name` column, `x_sq`; `^` elsewhere means an interaction)."""
    return f"{treatment}^2"


def bootstrap_moments(
    df: pd.DataFrame,
    outcome: str,
    columns: Sequence[str],
    firm: str,
    other_fe: Sequence[str],
    draws: int,
    seed: int,
    progress: Progress | None = print_progress("mediation bootstrap"),
) -> DrawnMoments:
    """Resample firms with replacement (new ids for duplicates) `draws` times and sum the
    per-firm moments of `columns` and `outcome` (see firm_moments) over each draw.

    A column `<treatment>^2` is built here from the treatment. Each draw is then exact OLS on
    the resampled panel for any equation among the columns.
    """
    squares = {c: c[: -len("^2")] for c in columns if c.endswith("^2") and c not in df.columns}
    check_columns(df, [outcome, *[c for c in columns if c not in squares], *squares.values(), firm, *other_fe])
    data = df[list(dict.fromkeys([outcome, *[c for c in columns if c not in squares], firm, *other_fe]))]
    data = data.assign(**{square: df[base] ** 2 for square, base in squares.items()})
    moments = FirmMoments.from_frame(data, outcome, list(columns), firm, other_fe)
    del df, data  # the draws need only the moments (a caller that keeps no name for its frame frees it here)
    rng = np.random.default_rng(seed)
    drawn = run_draws(lambda size: moments.aggregate(bootstrap_weights(rng, moments.n_firms, size)), draws, moments.n_firms, progress)
    total = moments.aggregate(np.ones(moments.n_firms))
    return DrawnMoments(moments.without_entries(), total, drawn, seed)


def indirect_effects(
    drawn: DrawnMoments,
    outcome: str,
    mediator: str,
    treatment: str,
    square_outcome: bool,
    square_mediator: bool,
    controls: Sequence[str],
    at: Mapping[str, float],
    alpha: float = 0.05,
) -> BootstrapResult:
    """The bootstrap of the indirect effect from drawn moments: eqs (2) and (3) re-estimated on
    each draw; X² enters eq (3) if `square_outcome`, eq (2) if `square_mediator`."""
    square = bootstrap_square_column(treatment)
    x_m = [treatment, *([square] if square_mediator else []), *controls]
    x_y = [treatment, *([square] if square_outcome else []), *controls, mediator]
    points = np.array(list(at.values()), dtype=float)
    moments = drawn.moments

    def indirect(agg: np.ndarray) -> np.ndarray:
        a = moments.solve(agg, mediator, x_m)[..., 0, :]
        b = moments.solve(agg, outcome, x_y)[..., 0, -1:]
        a2 = a[..., 1:2] if square_mediator else 0.0
        return np.concatenate([a[..., :1] * b, (a[..., :1] + 2 * a2 * points) * b], axis=-1)

    boot, estimate = indirect(drawn.drawn), indirect(drawn.total)
    return BootstrapResult(
        names=("ab", *(f"theta_{label}" for label in at)),
        estimate=estimate,
        draws=boot,
        se=boot.std(axis=0, ddof=1),
        percentile=percentile_ci(boot, alpha),
        bias_corrected=bias_corrected_ci(boot, estimate, alpha),
        alpha=alpha,
        seed=drawn.seed,
        at={f"theta_{label}": float(x) for label, x in at.items()},
    )


def bootstrap_columns(treatment: str, square: bool, controls: Sequence[str], mediators: Sequence[str]) -> list[str]:
    """The regressors whose moments a bootstrap of these mediators sums: X [, X²], controls, the mediators."""
    return list(dict.fromkeys([treatment, *([bootstrap_square_column(treatment)] if square else []), *controls, *mediators]))


def bootstrap_indirect(
    df: pd.DataFrame,
    outcome: str,
    mediator: str,
    treatment: str,
    square_outcome: bool,
    square_mediator: bool,
    controls: Sequence[str],
    firm: str,
    other_fe: Sequence[str],
    draws: int,
    seed: int,
    at: Mapping[str, float],
    alpha: float = 0.05,
    progress: Progress | None = print_progress("mediation bootstrap"),
) -> BootstrapResult:
    """Resample firms with replacement (new ids for duplicates), re-estimate eqs (2), (3).

    `df` is the estimation sample; X² is built here from `treatment` and enters eq (3)
    if `square_outcome`, eq (2) if `square_mediator`. Each draw is exact OLS on the
    resampled panel, computed from per-firm moments (see firm_moments).
    """
    columns = bootstrap_columns(treatment, square_outcome or square_mediator, controls, [mediator])
    drawn = bootstrap_moments(df, outcome, columns, firm, other_fe, draws, seed, progress)
    return indirect_effects(drawn, outcome, mediator, treatment, square_outcome, square_mediator, controls, at, alpha)


def proportion_mediated(a: float, b: float, c: float) -> float:
    """Share of the total effect c carried by the indirect effect: a·b / c."""
    return a * b / c


def wen_ye_decision(
    c: float,
    p_c: float,
    a: float,
    p_a: float,
    b: float,
    p_b: float,
    c_prime: float,
    p_c_prime: float,
    boot_ci: tuple[float, float],
    alpha: float = 0.05,
) -> str:
    """The five steps of Wen & Ye (2014) as one plain-English conclusion.

    boot_ci is the bootstrap (1 − alpha) CI of a·b. With a quadratic eq (2), a is the
    linear coefficient; read the instantaneous θ(x) from the bootstrap alongside.
    """
    ab = a * b
    low, high = boot_ci
    ci = f"bootstrap {100 * (1 - alpha):g}% CI [{low:.4g}, {high:.4g}]"
    both = p_a < alpha and p_b < alpha
    tested = f"a = {a:.4g} (p = {p_a:.3g}) and b = {b:.4g} (p = {p_b:.3g})"
    evidence = f"Steps 2-3: {tested} " + (
        "are both significant" if both else "are not both significant, so the bootstrap CI decides"
    )
    framing = f"Step 1: total effect c = {c:.4g} (p = {p_c:.3g}) is " + (
        "significant, so the argument is framed as mediation"
        if p_c < alpha
        else "not significant, so the argument is framed as suppression"
    )
    if not indirect_effect_found(p_a, p_b, boot_ci, alpha):
        head = f"No indirect effect: the {ci} of a·b = {ab:.4g} contains 0"
    elif p_c_prime >= alpha:
        head = (
            f"Full mediation: indirect effect a·b = {ab:.4g} ({ci}) is significant and the "
            f"direct effect c′ = {c_prime:.4g} is not (p = {p_c_prime:.3g})"
        )
    elif math.copysign(1, ab) == math.copysign(1, c_prime):
        head = (
            f"Partial mediation: indirect effect a·b = {ab:.4g} ({ci}) has the same sign as "
            f"the direct effect c′ = {c_prime:.4g}; share mediated ab/c = "
            f"{proportion_mediated(a, b, c):.1%}"
        )
    else:
        head = (
            f"Suppression: indirect effect a·b = {ab:.4g} ({ci}) has the opposite sign of the "
            f"direct effect c′ = {c_prime:.4g}; |ab/c′| = {abs(ab / c_prime):.1%}"
        )
    return f"{head}. {evidence}. {framing}."


def indirect_effect_found(p_a: float, p_b: float, boot_ci: tuple[float, float], alpha: float = 0.05) -> bool:
    """Wen & Ye's steps 2–3: a and b both significant, or else the bootstrap interval of a·b excludes 0."""
    return (p_a < alpha and p_b < alpha) or not boot_ci[0] <= 0 <= boot_ci[1]


def wen_ye_test(c: float, p_c: float, a: float, p_a: float, b: float, p_b: float, c_prime: float, p_c_prime: float,
                boot_ci: tuple[float, float], alpha: float = 0.05) -> HypothesisTest:
    """Wen & Ye's decision in the one shape: H0 "no indirect effect", the share mediated ab/c as its estimate."""
    return HypothesisTest("wen_ye", "ab", "no indirect effect", estimate=proportion_mediated(a, b, c), alpha=alpha,
                          reject=indirect_effect_found(p_a, p_b, boot_ci, alpha),
                          verdict=wen_ye_decision(c, p_c, a, p_a, b, p_b, c_prime, p_c_prime, boot_ci, alpha))
