"""Lind & Mehlum (2010) test of an inverted U in y = β1·x + β2·x² + … (methods §3.1).

Follows Stata `utest` v1.3 (quadratic model) with the Fieller interval of its `fieller`
option, plus the delta-method interval of R `tptest` and the Chinese three-step checklist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from eqexp.distributions import t_isf, t_sf
from eqexp.inference import InferenceError
from eqexp.inference.hypothesis import NAN, HypothesisTest, p_test

FiellerKind = Literal["bounded", "two_half_lines", "real_line"]


@dataclass(frozen=True)
class FiellerInterval:
    """Fieller confidence set for the turning point x* = −β1/(2β2).

    bounded: [low, high]; two_half_lines: (−∞, low] ∪ [high, ∞); real_line: low = −∞, high = ∞.
    """

    kind: FiellerKind
    low: float
    high: float

    def inside(self, x_low: float, x_high: float) -> bool:
        return self.kind == "bounded" and x_low <= self.low and self.high <= x_high

    def __str__(self) -> str:
        if self.kind == "bounded":
            return f"[{self.low:.4g}, {self.high:.4g}]"
        if self.kind == "two_half_lines":
            return f"(-inf, {self.low:.4g}] ∪ [{self.high:.4g}, inf)"
        return "(-inf, inf)"


@dataclass(frozen=True)
class UTestResult:
    """Everything `utest` reports, plus the turning point's intervals and the verdict.

    p_low = P(T > t_low) and p_high = P(T > −t_high) are one-sided in the direction an
    inverted U requires; p_value = P(T > t_slm) with t_slm = min(t_low, −t_high).
    """

    b1: float
    b2: float
    x_low: float
    x_high: float
    df: int
    alpha: float
    slope_low: float
    t_low: float
    p_low: float
    slope_high: float
    t_high: float
    p_high: float
    t_slm: float
    p_value: float
    trivial_failure: bool
    p_b2: float
    b2_se: float
    turning_point: float
    turning_point_se: float
    delta_low: float
    delta_high: float
    fieller: FiellerInterval
    step1: bool
    step2: bool
    step3: bool
    verdict: str
    details: tuple[str, str, str]  # what each step found, in words

    @property
    def inverted_u(self) -> bool:
        return self.step1 and self.step2 and self.step3

    def tests(self) -> list[HypothesisTest]:
        """The three steps, the two slope tests behind step 2, the delta-method variant of step 3, and the verdict."""
        df, alpha, x_star, se = float(self.df), self.alpha, self.turning_point, self.turning_point_se
        low, high = f"x_low = {self.x_low:.6g}", f"x_high = {self.x_high:.6g}"
        fieller = (self.fieller.low, self.fieller.high) if self.fieller.kind != "two_half_lines" else (NAN, NAN)
        in_range = self.x_low <= x_star <= self.x_high
        inside_delta = in_range and self.x_low <= self.delta_low and self.delta_high <= self.x_high
        return [
            replace(p_test("utest", "beta2_negative", "beta2 = 0 (no curvature)", self.b2 / self.b2_se, self.p_b2, "t", df, alpha=alpha),
                    estimate=self.b2, se=self.b2_se, reject=self.step1, verdict=f"Step 1 {_passes(self.step1)}: {self.details[0]}"),
            p_test("utest", "slope_at_x_low", f"slope <= 0 at {low}", self.t_low, self.p_low, "t", df, alpha=alpha, estimate=self.slope_low,
                   point=self.x_low),
            p_test("utest", "slope_at_x_high", f"slope >= 0 at {high}", self.t_high, self.p_high, "t", df, alpha=alpha,
                   estimate=self.slope_high, point=self.x_high),
            replace(p_test("utest", "lind_mehlum", f"the curve is monotone or U-shaped on [{low}, {high}]", self.t_slm, self.p_value, "t",
                           df, alpha=alpha), verdict=f"Step 2 {_passes(self.step2)}: {self.details[1]}"),
            HypothesisTest("utest", "turning_point_fieller", f"the turning point lies outside [{low}, {high}]", estimate=x_star, se=se,
                           ci_low=fieller[0], ci_high=fieller[1], distribution="Fieller", alpha=alpha, reject=self.step3,
                           verdict=f"Step 3 {_passes(self.step3)}: {self.details[2]}"),
            HypothesisTest("utest", "turning_point_delta", f"the turning point lies outside [{low}, {high}]", estimate=x_star, se=se,
                           ci_low=self.delta_low, ci_high=self.delta_high, distribution="delta method", alpha=alpha, reject=inside_delta,
                           verdict=f"{100 * (1 - alpha):g}% delta-method interval [{self.delta_low:.4g}, {self.delta_high:.4g}] "
                                   f"{'lies' if inside_delta else 'does not lie'} in [{self.x_low:.4g}, {self.x_high:.4g}]"),
            HypothesisTest("utest", "inverted_u", "no inverted U on the data's range (steps 1-3)", estimate=x_star, alpha=alpha,
                           reject=self.inverted_u, verdict=self.verdict),
        ]


def _passes(ok: bool) -> str:
    return "passes" if ok else "fails"


def slope_t(b1: float, b2: float, vcov: np.ndarray, x0: float) -> tuple[float, float]:
    """Slope β1 + 2β2·x0 and its t-value, Var = s11 + 4x0²·s22 + 4x0·s12."""
    slope = b1 + 2 * b2 * x0
    var = vcov[0, 0] + 4 * x0**2 * vcov[1, 1] + 4 * x0 * vcov[0, 1]
    return float(slope), float(slope / math.sqrt(var))


def fieller_interval(
    b1: float, b2: float, vcov: np.ndarray, df: int, alpha: float = 0.05
) -> FiellerInterval:
    """(1 − alpha) Fieller set for x*, with Stata `utest`'s d and θ_{l,h} (θ = β1/β2).

    When β2² − s22·T² < 0 the set is (−∞, −θ_l/2] ∪ [−θ_h/2, ∞): then θ_l > θ_h, so these
    are the set's inner ends (Stata prints them as [-Inf; −θ_h/2] U [−θ_l/2; +Inf]).
    """
    s11, s12, s22 = (float(v) for v in (vcov[0, 0], vcov[0, 1], vcov[1, 1]))
    t = float(t_isf(alpha / 2, df))
    d = (s12**2 - s11 * s22) * t**2 + b2**2 * s11 + b1**2 * s22 - 2 * b1 * b2 * s12
    if d <= 0:
        return FiellerInterval("real_line", -math.inf, math.inf)
    denom = b2**2 - s22 * t**2
    theta_l = (b1 * b2 - s12 * t**2 - t * math.sqrt(d)) / denom
    theta_h = (b1 * b2 - s12 * t**2 + t * math.sqrt(d)) / denom
    if denom > 0:
        return FiellerInterval("bounded", -theta_h / 2, -theta_l / 2)
    return FiellerInterval("two_half_lines", -theta_l / 2, -theta_h / 2)


def utest(
    b1: float,
    b2: float,
    vcov: np.ndarray,
    x_low: float,
    x_high: float,
    df: int,
    alpha: float = 0.05,
) -> UTestResult:
    """Sasabuchi–Lind–Mehlum test of H1: inverted U on [x_low, x_high].

    vcov is the 2×2 (cluster-robust) covariance of (b1, b2); df is the t degrees of
    freedom (G − 1 with clustered errors, as Stata's e(df_r)). Bounds should be the
    min/max of x in the estimation sample.
    """
    b1, b2, vcov = float(b1), float(b2), np.asarray(vcov, dtype=float)
    x_low, x_high = float(x_low), float(x_high)
    if vcov.shape != (2, 2):
        raise InferenceError(f"vcov must be the 2x2 covariance of (b1, b2), got shape {vcov.shape}")
    if not x_low < x_high:
        raise InferenceError(f"need x_low < x_high, got [{x_low}, {x_high}]")
    slope_low, t_low = slope_t(b1, b2, vcov, x_low)
    slope_high, t_high = slope_t(b1, b2, vcov, x_high)
    t_slm = min(t_low, -t_high)
    # Same-signed t's mean t_slm < 0, so p > 0.5: the trivial failure never rejects.
    trivial = bool(t_low * t_high > 0)
    p_value = float(t_sf(t_slm, df))
    b2_se = math.sqrt(vcov[1, 1])
    p_b2 = float(2 * t_sf(abs(b2) / b2_se, df))

    x_star = -b1 / (2 * b2)
    grad = np.array([-1 / (2 * b2), b1 / (2 * b2**2)])
    se = math.sqrt(grad @ vcov @ grad)
    half = float(t_isf(alpha / 2, df)) * se
    fieller = fieller_interval(b1, b2, vcov, df, alpha)

    step1 = b2 < 0 and p_b2 < alpha
    step2 = p_value < alpha  # ⇔ both one-sided slope tests pass, as t_slm is the smaller t
    step3 = x_low <= x_star <= x_high and fieller.inside(x_low, x_high)
    level = f"{100 * (1 - alpha):g}%"
    details = [
        f"beta2 = {b2:.4g} (two-sided p = {p_b2:.3g}) should be negative and significant",
        "extremum outside interval — trivial failure to reject H0"
        if trivial
        else f"slope {slope_low:.4g} at x_L = {x_low:.4g} (t = {t_low:.2f}) and "
        f"{slope_high:.4g} at x_H = {x_high:.4g} (t = {t_high:.2f}); "
        f"SLM t = {t_slm:.2f}, p = {p_value:.3g}",
        f"turning point {x_star:.4g} with {level} Fieller interval {fieller} "
        f"should lie in [{x_low:.4g}, {x_high:.4g}]",
    ]
    steps = (step1, step2, step3)
    failed = [str(i + 1) for i, ok in enumerate(steps) if not ok]
    head = "Inverted U: all three steps pass." if not failed else (
        f"No inverted U: step {', '.join(failed)} fail{'s' if len(failed) == 1 else ''}."
    )
    body = "; ".join(
        f"step {i + 1} {'passes' if ok else 'fails'}: {text}"
        for i, (ok, text) in enumerate(zip(steps, details))
    )
    return UTestResult(
        b1=b1,
        b2=b2,
        x_low=x_low,
        x_high=x_high,
        df=df,
        alpha=alpha,
        slope_low=slope_low,
        t_low=t_low,
        p_low=float(t_sf(t_low, df)),
        slope_high=slope_high,
        t_high=t_high,
        p_high=float(t_sf(-t_high, df)),
        t_slm=t_slm,
        p_value=p_value,
        trivial_failure=trivial,
        p_b2=p_b2,
        b2_se=b2_se,
        turning_point=x_star,
        turning_point_se=se,
        delta_low=x_star - half,
        delta_high=x_star + half,
        fieller=fieller,
        step1=step1,
        step2=step2,
        step3=step3,
        verdict=f"{head} {body}.",
        details=tuple(details),
    )
