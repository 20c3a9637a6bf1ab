"""The one tie rule of every resampling p-value: a draw equal to the observed statistic, up to
rounding, counts as at least as extreme; a draw really below it does not."""

from __future__ import annotations

import numpy as np

from eqexp.inference.extreme import TIE_RTOL, share_at_least, share_at_most
from eqexp.inference.mediation import bias_corrected_ci
from eqexp.multiverse.joint import joint_tests


def test_a_draw_equal_to_the_observed_statistic_up_to_rounding_is_counted_and_a_real_gap_is_not():
    observed = 2.5
    drawn = np.array([observed, np.nextafter(observed, 0), observed * (1 - 1e-13), observed * (1 - 1e-6), 3.0, 1.0])
    assert share_at_least(drawn, observed) == 4 / 6  # the three ties and 3.0
    assert share_at_most(drawn, observed) == 5 / 6  # everything but 3.0
    assert TIE_RTOL * observed < observed * 1e-6  # the tolerance is far below a real difference


def test_ties_are_judged_per_column_on_each_observed_value():
    observed = np.array([1e-6, -4.0])
    drawn = np.array([[1e-6 * (1 + 1e-12), -4.0 * (1 + 1e-12)], [0.9e-6, -3.9]])
    np.testing.assert_array_equal(share_at_least(drawn, observed), [0.5, 1.0])


def test_a_multiverse_null_draw_that_equals_the_observed_curve_counts_for_every_statistic():
    """Two null draws equal to the observed curve (one exactly, one a rounding away): p = (1 + 2)/(1 + 2)."""
    estimates = np.array([0.5, 0.3, 0.8, -0.1])
    se, df = np.full(4, 0.2), np.full(4, 100.0)
    null = np.vstack([estimates, estimates * (1 + 1e-14)])
    tests = joint_tests(estimates, se, df, null, 0.05)
    assert [t.p_value for t in tests] == [1.0, 1.0, 1.0]
    below = joint_tests(estimates, se, df, np.vstack([0.5 * estimates, 0.5 * estimates]), 0.05)
    assert [t.p_value for t in below] == [1 / 3] * 3


def test_the_bias_corrected_interval_does_not_count_a_tied_draw_as_below_the_estimate():
    """z0 = Φ⁻¹(#{θ* < θ̂}/B): a draw a rounding below θ̂ is a tie, so z0 stays where the exact tie puts it."""
    estimate = np.array([1.0])
    draws = np.linspace(0.0, 2.0, 201)[:, None]  # one draw exactly at θ̂: 100 below, 100 above
    rounded = draws.copy()
    rounded[100, 0] = np.nextafter(1.0, 0)
    np.testing.assert_array_equal(bias_corrected_ci(rounded, estimate), bias_corrected_ci(draws, estimate))
