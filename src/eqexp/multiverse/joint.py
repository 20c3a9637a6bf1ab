"""The joint test of a specification curve (Simonsohn, Simmons & Nelson 2020, "Specification
curve analysis", Nature Human Behaviour 4: 1208–1214), on estimates under the null.

For K specs with estimates bₖ, standard errors sₖ and t degrees of freedom dₖ:

- the dominant sign σ: +1 when at least as many estimates are positive as negative, else −1;
- share significant: the share of specs with two-sided p < α and sign σ;
- median: the median estimate, compared as σ·median (its distance from 0 in the dominant direction);
- Stouffer's Z: Σₖ zₖ / √K with zₖ = Φ⁻¹(1 − pₖ), pₖ the one-sided p-value of tₖ = bₖ/sₖ
  in the dominant direction (P(T > σ·tₖ), T ~ t(dₖ)); pₖ below 1e-300 counts as 1e-300.

Each statistic is computed alike on every draw under the null, with the draw's own
dominant sign and each spec's t = b*/sₖ (its full-sample standard error: a draw's own would
cost a pass over the data per draw and spec). The p-value of a statistic is the share of
draws at least as extreme as the observed one, counting the observed curve as one draw:
(1 + #{T* ≥ T}) / (1 + B), so it is never 0. A draw tied with T (within `extreme.TIE_RTOL`;
the share significant takes few values, so ties are common) counts as at least as extreme.
"""

from __future__ import annotations

import numpy as np

from eqexp.distributions import norm_ppf, t_sf, t_two_sided
from eqexp.inference.extreme import at_least
from eqexp.inference.hypothesis import HypothesisTest, p_test

STATISTICS = ("share_significant", "median", "stouffer_z")
_MEANING = {"share_significant": "share of specs significant with the dominant sign", "median": "median estimate",
            "stouffer_z": "Stouffer's Z of the one-sided p-values"}
_MIN_P = 1e-300


def dominant_sign(estimates: np.ndarray) -> np.ndarray:
    """+1 where at least as many estimates (last axis) are positive as negative, else −1."""
    return np.where((estimates > 0).sum(-1) >= (estimates < 0).sum(-1), 1, -1)


def statistics(estimates: np.ndarray, se: np.ndarray, df: np.ndarray, alpha: float) -> dict[str, np.ndarray]:
    """The three statistics (and σ) of curves given as rows of `estimates` (…, K), compared in the dominant direction."""
    sign = dominant_sign(estimates)
    t = estimates / se
    significant = (t_two_sided(t, df) < alpha) & (np.sign(estimates) == sign[..., None])
    one_sided = np.maximum(t_sf(sign[..., None] * t, df), _MIN_P)
    return {
        "sign": sign,
        "share_significant": significant.mean(-1),
        "median": sign * np.median(estimates, axis=-1),
        "stouffer_z": -norm_ppf(one_sided).sum(-1) / np.sqrt(estimates.shape[-1]),
    }


def joint_tests(estimates: np.ndarray, se: np.ndarray, df: np.ndarray, null: np.ndarray, alpha: float) -> list[HypothesisTest]:
    """The three tests of one curve (K,) against its draws under the null (B, K): `statistic` is what the
    draws are compared on (σ·median for the median), `estimate` the statistic as reported (the median with its sign)."""
    observed = statistics(estimates, se, df, alpha)
    drawn = statistics(null, se, df, alpha)
    sign = int(observed["sign"])
    tests = []
    for name in STATISTICS:
        p_value = (1 + np.sum(at_least(drawn[name], observed[name]))) / (1 + len(null))
        shown = sign * observed[name] if name == "median" else observed[name]
        null_text = f"no effect in any specification ({_MEANING[name]}; dominant sign {'positive' if sign > 0 else 'negative'})"
        tests.append(p_test("specification_curve", name, null_text, float(observed[name]), float(p_value), "null draws", alpha=alpha,
                            estimate=float(shown), draws=len(null)))
    return tests
