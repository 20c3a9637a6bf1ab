"""Comparisons that mean the same on any CPU, and the switch that proves it.

A covariance matrix is compared on the scale of its standard errors: an off-diagonal entry is
a small difference of large products, so an elementwise relative tolerance on it measures the
cancellation, not the estimator. Arrays are compared relative to their largest entry.

`EQEXP_TEST_SHUFFLE=<seed>` puts the rows of every test panel of the `numerics` tests in a
seeded random order: every sum then runs in another order, as on another CPU or BLAS build,
and every comparison (and every resampling p-value) must hold both ways. `make test` runs
those tests twice, once as built and once shuffled.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

SHUFFLE = os.environ.get("EQEXP_TEST_SHUFFLE", "")


def in_test_order(df: pd.DataFrame) -> pd.DataFrame:
    """The panel as built, or its rows in the seeded order that EQEXP_TEST_SHUFFLE asks for."""
    if not SHUFFLE:
        return df
    return df.sample(frac=1, random_state=int(SHUFFLE)).reset_index(drop=True)


def assert_vcov_close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    """|A_ij − B_ij| ≤ rtol·se_i·se_j: the matrices agree to rtol on the scale of the standard errors
    (for a diagonal entry, a relative error; off the diagonal, rtol of the correlation scale)."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    se = np.sqrt(np.abs(np.diag(expected)))
    error = np.abs(actual - expected) / np.outer(se, se)
    worst = np.unravel_index(np.argmax(error), error.shape)
    assert error[worst] <= rtol, f"vcov entry {worst} differs by {error[worst]:.3g} of se_i·se_j (tolerance {rtol:g})"


def assert_close_on_scale(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    """Every entry within rtol of the largest |entry| of `expected`."""
    expected = np.asarray(expected, float)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * np.abs(expected).max())
