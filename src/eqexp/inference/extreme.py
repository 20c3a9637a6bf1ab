"""How every resampling p-value counts its draws: one rule, whatever the test or the CPU.

The wild bootstrap, the permutation tests, the mediation bootstrap and the multiverse's null
draws all compare drawn statistics with the observed one. Some draws equal it in exact
arithmetic: the identity sign pattern of an enumerated wild bootstrap, and its mirror, give
|t*| = |t|; a permutation can give back the observed grouping. Computed, such a draw lands a
few ulps above or below the observed value depending on the order of the sums, and so on the
CPU, the BLAS build and the order of the rows. The rule: a draw within TIE_RTOL·|observed| of
the observed statistic is a tie, and a tie counts as at least as extreme. Real differences
between draws are many orders of magnitude larger than this tolerance; rounding is many
orders smaller.
"""

from __future__ import annotations

import numpy as np

TIE_RTOL = 1e-8


def _margin(observed: np.ndarray | float) -> np.ndarray:
    observed = np.asarray(observed, dtype=float)
    return TIE_RTOL * np.abs(observed)


def at_least(drawn: np.ndarray, observed: np.ndarray | float) -> np.ndarray:
    """drawn ≥ observed, a tie (within TIE_RTOL·|observed|) counted: booleans shaped like `drawn`."""
    return drawn >= np.asarray(observed, dtype=float) - _margin(observed)


def at_most(drawn: np.ndarray, observed: np.ndarray | float) -> np.ndarray:
    """drawn ≤ observed, a tie counted."""
    return drawn <= np.asarray(observed, dtype=float) + _margin(observed)


def share_at_least(drawn: np.ndarray, observed: np.ndarray | float, axis: int = 0) -> np.ndarray:
    """The share of draws (along `axis`) at least as large as the observed statistic, ties counted."""
    return np.mean(at_least(drawn, observed), axis=axis)


def share_at_most(drawn: np.ndarray, observed: np.ndarray | float, axis: int = 0) -> np.ndarray:
    """The share of draws at most as large as the observed statistic, ties counted."""
    return np.mean(at_most(drawn, observed), axis=axis)
