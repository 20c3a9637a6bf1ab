"""Simonsohn's (2018) two-lines test of a U shape: the pieces of its published procedure.

"Two lines: a valid alternative to the invalid testing of U-shaped relationships with
quadratic regressions", AMPPS 1(4): 538–555; the procedure of his `twolines()` (app 0.52):

1. the shape to look for comes from the quadratic: increasing at the lowest x, an inverted U
   (look for a maximum), else a U;
2. a flexible fit ŷ(x) with its standard error; among the middle 80 % of x (strictly between
   its 10th and 90th percentiles) the most extreme ŷ, and the flat region: the x whose
   ŷ ± SE reaches it;
3. interrupted regressions at the flat region's median; z₁ and z₂ are the |t| of the two slopes;
4. Robin Hood: the breakpoint moves to the z₂/(z₁ + z₂) quantile of the flat region, giving
   more data to the weaker line; the interrupted regressions are run again there;
5. a U (inverted U) when the slopes have opposite signs and both are significant at 5 %.

The interrupted regressions are y = b₁·x_low + b₂·x_high + c·high + controls: x_low = x − x_c
below the breakpoint (0 above), x_high = x − x_c above it, high = 1 above it. Line 1 puts the
breakpoint in the lower segment, line 2 in the upper one; b₁ comes from line 1, b₂ from line 2.
Percentiles are R's default (type 7, numpy's "linear"), as in his code.

In a panel with fixed effects there is no GAM: eqexp's flexible fit is a restricted cubic
spline in x (knots at Harrell's quantiles) estimated with the model's fixed effects, controls
and vcov, and ŷ is relative to its sample mean (the level is absorbed by the effects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from eqexp.inference import InferenceError
from eqexp.inference.hypothesis import HypothesisTest, p_test, p_text

Shape = Literal["inverted_u", "u"]
# Harrell (2015, Regression Modeling Strategies §2.4.6): knot quantiles by number of knots.
KNOT_QUANTILES = {3: (0.10, 0.50, 0.90), 4: (0.05, 0.35, 0.65, 0.95), 5: (0.05, 0.275, 0.50, 0.725, 0.95)}
ALPHA = 0.05


def shape_of(b1: float, b2: float, x_min: float) -> Shape:
    """Increasing at the lowest x (b1 + 2·b2·x_min > 0): an inverted U is what to look for."""
    return "inverted_u" if b1 + 2 * b2 * x_min > 0 else "u"


def spline_knots(x: np.ndarray, n_knots: int = 5) -> np.ndarray:
    """Knots at Harrell's quantiles, fewer when x has few distinct values (at least 3)."""
    distinct = len(np.unique(x))
    k = min(n_knots, distinct)
    if k < 3:
        raise InferenceError(f"x takes {distinct} distinct values: a flexible fit needs at least 3")
    return np.unique(np.quantile(x, KNOT_QUANTILES[k]))


def spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted (natural) cubic spline: x and K − 2 nonlinear terms, linear beyond the outer knots."""
    t, k = knots, len(knots)
    scale = (t[-1] - t[0]) ** 2  # keeps the terms on the scale of x

    def cube(v: np.ndarray) -> np.ndarray:
        return np.maximum(v, 0.0) ** 3

    terms = [(cube(x - t[j]) - cube(x - t[-2]) * (t[-1] - t[j]) / (t[-1] - t[-2])
              + cube(x - t[-1]) * (t[-2] - t[j]) / (t[-1] - t[-2])) / scale for j in range(k - 2)]
    return np.column_stack([x, *terms])


def flat_region(x: np.ndarray, yhat: np.ndarray, se: np.ndarray, shape: Shape) -> np.ndarray:
    """The x (one per observation) in the middle 80 % whose ŷ + SE (U: ŷ − SE) reaches the most extreme ŷ."""
    low, high = np.quantile(x, [0.1, 0.9])
    middle = (x > low) & (x < high)
    if not middle.any():
        raise InferenceError("no observation lies strictly between the 10th and 90th percentiles of x")
    y, s = yhat[middle], se[middle]
    flat = y + s > y.max() if shape == "inverted_u" else y - s < y.min()
    return x[middle][flat]


def robin_hood(flat: np.ndarray, z1: float, z2: float) -> float:
    """The z₂/(z₁ + z₂) quantile of the flat region: the weaker line gets more of it."""
    return float(np.quantile(flat, abs(z2) / (abs(z1) + abs(z2))))


def segments(x: np.ndarray, breakpoint: float, line: Literal[1, 2]) -> dict[str, np.ndarray]:
    """x_low, x_high and high of an interrupted regression; the breakpoint belongs to segment `line`."""
    above = x > breakpoint if line == 1 else x >= breakpoint
    shifted = x - breakpoint
    return {"x_low": np.where(above, 0.0, shifted), "x_high": np.where(above, shifted, 0.0), "high": above.astype(np.float64)}


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Curve:
    """The flexible fit ŷ(x), relative to its sample mean, with its standard error, on a grid of x."""

    x: np.ndarray
    yhat: np.ndarray
    se: np.ndarray


@dataclass(frozen=True)
class Line:
    """One slope of the interrupted regression."""

    slope: float
    t: float
    p: float  # two-sided
    df: int


@dataclass(frozen=True)
class TwoLinesResult:
    shape: Shape
    breakpoint: float  # after Robin Hood
    flat_median: float  # the first breakpoint
    flat_low: float
    flat_high: float
    first: Line  # below the breakpoint
    second: Line  # above it
    n_low: int  # observations on each side (line 1's split)
    n_high: int

    @property
    def confirmed(self) -> bool:
        """Opposite, significant slopes in the direction of the shape (Simonsohn's u.sig)."""
        rising = self.first.slope > 0 > self.second.slope
        falling = self.first.slope < 0 < self.second.slope
        significant = self.first.p < ALPHA and self.second.p < ALPHA
        return significant and (rising if self.shape == "inverted_u" else falling)

    @property
    def verdict(self) -> str:
        name = "inverted U" if self.shape == "inverted_u" else "U"
        sides = (f"slope {self.first.slope:.4g} below x_c = {self.breakpoint:.4g} (t = {self.first.t:.2f}, {p_text(self.first.p)}) "
                 f"and {self.second.slope:.4g} above (t = {self.second.t:.2f}, {p_text(self.second.p)})")
        if self.confirmed:
            return f"{name[0].upper()}{name[1:]} confirmed: {sides}."
        return f"No {name}: {sides}; both must be significant at 5 % with opposite signs."

    def tests(self) -> list[HypothesisTest]:
        """Each line's slope test, and the verdict on the shape (breakpoint as its estimate)."""
        at = f"x_c = {self.breakpoint:.6g}"
        slopes = [p_test("two_lines", f"slope_{side}", f"slope = 0 {side} the breakpoint {at}", line.t, line.p, "t", line.df,
                         estimate=line.slope, point=self.breakpoint) for side, line in (("below", self.first), ("above", self.second))]
        name = "inverted U" if self.shape == "inverted_u" else "U"
        return [*slopes,
                HypothesisTest("two_lines", "u_shape", f"no {name}: the two slopes are not significant with opposite signs",
                               estimate=self.breakpoint, alpha=ALPHA, reject=self.confirmed,
                               verdict=f"{self.verdict} Breakpoint by Robin Hood in the flat region [{self.flat_low:.4g}, {self.flat_high:.4g}]; "
                                       f"{self.n_low:,} observations at or below it, {self.n_high:,} above.")]