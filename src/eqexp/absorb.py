"""Absorbing fixed effects: the within transformation of any block of columns of one sample.

An `Absorber` holds the fixed effects of one estimation sample and demeans columns on
request. Two engines give the same numbers (to ~1e-12, the tolerance of the iterative one):

- exact, when one fixed effect is large and the others are small (firm + year, firm +
  year + province, ...): demean within the large effect's groups, then partial the small
  effects' dummies out of what is left by Frisch–Waugh–Lovell,
      x̃ = W(x − D·Γ),   Γ = (W D)⁺ W x,   W = within the large effect,
  where (W D)ᵀ(W D) is a small L × L matrix built from per-group level counts. Two passes
  of group means and a tiny solve, no iteration;
- otherwise pyfixest's own alternating-projections core (`pyfixest.core.demean`) at
  `FIXEF_TOL`, the engine `pf.feols` runs on.

Demeaning is column by column in both engines, so a column gives the same result alone
or in a block: blocks can be cached and shared by every model that uses the sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Alternating projections converge to this tolerance; pyfixest's default (1e-8) leaves
# ~1e-8 relative error in off-diagonal covariances, too loose for explicit-dummy OLS.
FIXEF_TOL = 1e-12
MAX_ITERATIONS = 10_000
# The exact engine builds a (groups of the large effect) × (levels of the others) count
# matrix and an L × L solve; beyond these sizes the iterative engine is cheaper.
MAX_SMALL_LEVELS = 400
MAX_COUNT_ENTRIES = 20_000_000
# Eigenvalues of the small effects' Gram matrix below this share of the largest are its
# exact null space (one redundant level per effect), up to rounding.
_RANK_TOL = 1e-10


class AbsorbError(ValueError):
    """Demeaning did not converge."""


def factorize(values) -> np.ndarray:
    """Integer codes 0..L-1 of any column (numbers or strings), in order of appearance."""
    import pandas as pd

    return pd.factorize(np.asarray(values))[0].astype(np.int64, copy=False)


def compact(codes: np.ndarray) -> np.ndarray:
    """Renumber integer codes to 0..L-1 for the L levels present (a subset of rows leaves gaps)."""
    if len(codes) == 0:
        return codes
    present = np.zeros(int(codes.max()) + 1, bool)
    present[codes] = True
    return (np.cumsum(present) - 1)[codes]


class Absorber:
    """The fixed effects of one sample (codes per effect), ready to demean columns."""

    def __init__(self, codes: Sequence[np.ndarray]):
        self.codes = [np.asarray(c, dtype=np.int64) for c in codes]
        self.n_obs = len(self.codes[0]) if self.codes else 0
        self.n_levels = [int(c.max()) + 1 if len(c) else 0 for c in self.codes]
        self.exact = self._plan_exact()

    def _plan_exact(self) -> _Exact | None:
        if not self.codes:
            return None
        main = int(np.argmax(self.n_levels))
        others = [i for i in range(len(self.codes)) if i != main]
        small = sum(self.n_levels[i] for i in others)
        if small > MAX_SMALL_LEVELS or self.n_levels[main] * small > MAX_COUNT_ENTRIES:
            return None
        return _Exact(self.codes[main], self.n_levels[main], [self.codes[i] for i in others], [self.n_levels[i] for i in others])

    def demean(self, x: np.ndarray) -> np.ndarray:
        """The columns of `x` (n × k) with every fixed effect absorbed."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            return self.demean(x[:, None])[:, 0]
        if not self.codes:
            return x.copy()
        if self.exact is not None:
            return self.exact.demean(x)
        return self._alternating_projections(x)

    def _alternating_projections(self, x: np.ndarray) -> np.ndarray:
        from pyfixest.core.demean import demean

        flist = np.column_stack(self.codes).astype(np.uint64)
        out, converged = demean(np.ascontiguousarray(x), flist, np.ones(self.n_obs), FIXEF_TOL, MAX_ITERATIONS)
        if not converged:
            raise AbsorbError(f"demeaning did not converge in {MAX_ITERATIONS} iterations")
        return out


class _Exact:
    """Within a large effect, then the small effects' dummies partialled out (FWL)."""

    def __init__(self, main: np.ndarray, n_main: int, others: list[np.ndarray], n_others: list[int]):
        self.main, self.n_main = main, n_main
        self.size = np.bincount(main, minlength=n_main).astype(np.float64)
        offsets = np.cumsum([0, *n_others])
        self.levels = [codes + offset for codes, offset in zip(others, offsets)]  # columns of D
        self.n_small = int(offsets[-1])
        self.project = self._projector() if self.n_small else None

    def within(self, column: np.ndarray) -> np.ndarray:
        """A column minus its mean in each group of the large effect."""
        means = np.bincount(self.main, weights=column, minlength=self.n_main) / self.size
        return column - means[self.main]

    def _projector(self) -> np.ndarray:
        """(WD)⁺ as an L × L matrix: the pseudo-inverse of DᵀWD on its non-null space."""
        size, n = self.n_small, self.n_main
        counts = sum(np.bincount(self.main * size + level, minlength=n * size) for level in self.levels)
        counts = counts.reshape(n, size).astype(np.float64)  # level counts per group of the large effect
        dtd = sum(np.bincount(a * size + b, minlength=size * size) for a in self.levels for b in self.levels)
        dtd = dtd.reshape(size, size).astype(np.float64)  # DᵀD: contingency counts of the small levels
        gram = dtd - counts.T @ (counts / self.size[:, None])  # DᵀWD
        eigval, eigvec = np.linalg.eigh(gram)
        keep = eigval > _RANK_TOL * max(eigval[-1], 1.0)
        return (eigvec[:, keep] / eigval[keep]) @ eigvec[:, keep].T

    def demean(self, x: np.ndarray) -> np.ndarray:
        # column by column: vectors of one column stay in cache, and no n × k temporaries
        out = np.empty(x.shape, order="F")
        for j in range(x.shape[1]):
            out[:, j] = self._demean_column(np.ascontiguousarray(x[:, j]))
        return out

    def _demean_column(self, column: np.ndarray) -> np.ndarray:
        xw = self.within(column)
        if self.project is None:
            return xw
        dtx = sum(np.bincount(level, weights=xw, minlength=self.n_small) for level in self.levels)  # DᵀWx
        gamma = self.project @ dtx
        fitted = gamma[self.levels[0]]  # D·Γ
        for level in self.levels[1:]:
            fitted += gamma[level]
        return xw - self.within(fitted)
