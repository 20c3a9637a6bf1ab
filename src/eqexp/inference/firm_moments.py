"""Exact, fast re-estimation of `y ~ x | firm + other FE` under firm-level reweighting.

With a firm FE, OLS equals OLS of firm-demeaned y on firm-demeaned [x, dummies of the
other FE] (Frisch–Waugh–Lovell). Firm-demeaning happens within each firm, so any sample
built from whole firms is a frequency-weighted sum of per-firm cross-products:

- a firm-cluster bootstrap draw (duplicated firms get new ids) has weight = times drawn;
- a subsample or a relabelling of firms into groups has 0/1 weights (the other-FE dummies
  then become group-specific automatically, since only that group's firms are summed).

So we compute the per-firm cross-products Z̃ᵢᵀZ̃ᵢ once (Z = [x, y, dummies]) and every
draw costs one matrix product `w @ S` plus a tiny solve. The rows are ordered by the size
of their firm, so the firms of one size form one (firms, rows, columns) block of rows:
demeaning and every firm's Z̃ᵢᵀZ̃ᵢ are then batched array operations, not passes per firm
or per pair of columns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eqexp.inference import InferenceError

Progress = Callable[[int, int], None]

# Weights are generated in chunks of at most this many entries (64 MiB of float64).
CHUNK_ENTRIES = 2**23
# Dummy eigenvalues below this share of the largest are exact zeros (absent levels,
# the within-firm sum constraint) up to rounding; real ones are far larger.
_RANK_TOL = 1e-10
_MAX_BYTES = 4 * 2**30
_BLOCK_ROWS = 2**11  # rows of Z demeaned and multiplied at once: their products stay in cache, the temporaries small


def print_progress(task: str) -> Progress:
    """A progress callback printing `task: done/total draws` to stderr."""

    def report(done: int, total: int) -> None:
        print(f"{task}: {done}/{total} draws", file=sys.stderr, flush=True)

    return report


def run_draws(
    draw: Callable[[int], np.ndarray], draws: int, n_firms: int, progress: Progress | None
) -> np.ndarray:
    """Stack `draw(size)` (size, k) over chunks whose weights fit in CHUNK_ENTRIES."""
    chunk = max(1, CHUNK_ENTRIES // n_firms)
    parts = []
    for start in range(0, draws, chunk):
        parts.append(draw(min(chunk, draws - start)))
        if progress is not None:
            progress(start + len(parts[-1]), draws)
    return np.concatenate(parts)


def bootstrap_weights(rng: np.random.Generator, n_firms: int, size: int) -> np.ndarray:
    """(size, n_firms) counts: each row draws n_firms firms with replacement.

    Row by row into one float array: the same stream as drawing all picks at once, without
    (size × n_firms) integer temporaries.
    """
    counts = np.empty((size, n_firms))
    for row in counts:
        row[:] = np.bincount(rng.integers(0, n_firms, size=n_firms), minlength=n_firms)
    return counts


def check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise if a column is absent or has missing values (nothing is dropped silently)."""
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise InferenceError(f"columns {absent} are not in the data; available: {list(df.columns)}")
    missing = {c: int(n) for c, n in df[list(columns)].isna().sum().items() if n}
    if missing:
        raise InferenceError(
            f"missing values in {missing}: pass the estimation sample (drop those rows first)"
        )


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class FirmMoments:
    """Per-firm cross-products of firm-demeaned [continuous columns, other-FE dummies].

    `cross[i]` is the packed upper triangle of firm `firms[i]`'s Z̃ᵀZ̃ (see `_packing`); `columns` lists
    the continuous columns (x then y, deduplicated), followed by `n_dummies` dummies.
    """

    y: tuple[str, ...]
    x: tuple[str, ...]
    columns: tuple[str, ...]
    n_dummies: int
    firms: np.ndarray
    n_obs: np.ndarray
    cross: np.ndarray

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        y: str | Sequence[str],
        x: Sequence[str],
        firm: str,
        other_fe: Sequence[str] = ("year",),
    ) -> FirmMoments:
        """Precompute the per-firm moments of `y ~ x | firm + other_fe` on `df`.

        Every level of every other FE but one gets a dummy: which of the rest are redundant
        depends on the draw (a year no drawn firm has), so `solve` uses a pseudo-inverse.
        """
        ys = _names(y)
        columns = tuple(dict.fromkeys([*x, *ys]))
        check_columns(df, [*columns, firm, *other_fe])
        codes, firms = pd.factorize(df[firm], sort=True)
        # Each other FE's levels but its last, numbered after the previous effects' (-1: no
        # dummy). Within a firm an effect's dummies sum to one, so after firm-demeaning the
        # last is minus the sum of the others, in every subsample and every draw.
        levels, n_dummies = [], 0
        for fe in other_fe:
            level, uniques = pd.factorize(df[fe], sort=True)
            levels.append(np.where(level < len(uniques) - 1, level + n_dummies, -1))
            n_dummies += len(uniques) - 1
        n_firms, c = len(firms), len(columns)
        p = c + n_dummies
        if n_firms * p * (p + 1) * 4 > _MAX_BYTES:
            raise InferenceError(
                f"{n_dummies} dummies for {list(other_fe)} make the per-firm moments too "
                "large; use low-cardinality other FE (e.g. year) here"
            )
        n_obs = np.bincount(codes, minlength=n_firms)
        by_size = np.argsort(n_obs, kind="stable")  # firms by their number of rows, then by id
        place = np.empty(n_firms, dtype=np.intp)
        place[by_size] = np.arange(n_firms)
        order = np.argsort(place[codes], kind="stable")  # rows: the firms in `by_size` order
        values = [df[column].to_numpy(float) for column in columns]
        cross = np.empty((n_firms, p * (p + 1) // 2))  # packed as `_packing` orders it
        entry_row, entry_column = _packing(c, n_dummies)
        packed = entry_row * p + entry_column  # the packed entries' places in a flattened p × p matrix
        first_firm = first_row = 0
        for size, count in zip(*np.unique(n_obs[by_size], return_counts=True)):
            # Z of at most _BLOCK_ROWS rows of firms with `size` rows each: the whole Z, or all
            # firms' Z̃ᵢᵀZ̃ᵢ unpacked, is never held
            per_block = max(1, _BLOCK_ROWS // size)
            for start in range(0, count, per_block):
                n_here = min(per_block, count - start)
                rows = order[first_row : first_row + size * n_here]
                block = np.zeros((len(rows), p))
                for j, column in enumerate(values):
                    block[:, j] = column[rows]
                for level in levels:
                    block_level = level[rows]
                    has = block_level >= 0
                    block[np.flatnonzero(has), c + block_level[has]] = 1.0
                block = block.reshape(n_here, size, p)
                block -= block.mean(axis=1, keepdims=True)
                products = (block.transpose(0, 2, 1) @ block).reshape(n_here, p * p)
                cross[by_size[first_firm : first_firm + n_here]] = np.take(products, packed, axis=1)
                first_firm, first_row = first_firm + n_here, first_row + size * n_here
        return cls(ys, tuple(x), columns, n_dummies, np.asarray(firms), n_obs, cross)

    def subset(self, firms: np.ndarray) -> FirmMoments:
        """The moments of the firms at `firms` (positions or a boolean mask), as if built from their rows only."""
        return FirmMoments(self.y, self.x, self.columns, self.n_dummies, self.firms[firms], self.n_obs[firms], self.cross[firms])

    def without_entries(self) -> FirmMoments:
        """The same names, no per-firm entries: enough to `solve` sums kept for later (a new empty
        array, not a zero-row view, which would keep all the entries alive)."""
        return FirmMoments(self.y, self.x, self.columns, self.n_dummies, self.firms, self.n_obs, np.empty((0, self.cross.shape[1])))

    @property
    def n_firms(self) -> int:
        return len(self.firms)

    def aggregate(self, weights: np.ndarray) -> np.ndarray:
        """Weighted sums Σᵢ wᵢ Z̃ᵢᵀZ̃ᵢ: weights (G,) or (B, G) → (p, p) or (B, p, p)."""
        weights = np.asarray(weights, dtype=float)
        if weights.shape[-1] != self.n_firms:
            raise InferenceError(f"weights must have {self.n_firms} entries (one per firm) last")
        return self._unpacked(weights @ self.cross)

    def sum_over(self, members: np.ndarray) -> np.ndarray:
        """Σᵢ Z̃ᵢᵀZ̃ᵢ over each row's firms: members (B, m) firm positions → (B, p, p).

        `aggregate` with 0/1 weights, at the cost of the B·m chosen firms instead of all B·G: a
        product with the selection compressed by firm reads each chosen firm's entries once for
        all the rows that hold it. Faster than the dense product while m ≤ ~G/8.
        """
        from scipy.sparse import csr_matrix

        size, m = members.shape
        chosen = csr_matrix((np.ones(size * m), members.ravel(), np.arange(0, size * m + 1, m)), shape=(size, self.n_firms))
        return self._unpacked(chosen.tocsc() @ self.cross)

    def _unpacked(self, packed: np.ndarray) -> np.ndarray:
        """(…, p, p) symmetric matrices from their packed entries (…, p(p+1)/2)."""
        p = len(self.columns) + self.n_dummies
        rows, cols = _packing(len(self.columns), self.n_dummies)
        full = np.zeros((*packed.shape[:-1], p, p))
        full[..., rows, cols] = packed
        full[..., cols, rows] = packed
        return full

    def solve(
        self,
        moments: np.ndarray,
        y: str | Sequence[str] | None = None,
        x: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Coefficients of each y on x (default: the constructor's) from aggregated moments.

        Returns shape moments.shape[:-2] + (len(y), len(x)).
        """
        y = self.y if y is None else _names(y)
        x = self.x if x is None else tuple(x)
        resid = self._partial_out_dummies(moments)
        ix = [self.columns.index(c) for c in x]
        iy = [self.columns.index(c) for c in y]
        beta = np.linalg.solve(resid[..., ix, :][..., :, ix], resid[..., ix, :][..., :, iy])
        return np.swapaxes(beta, -1, -2)

    def coefficients(
        self,
        weights: np.ndarray,
        y: str | Sequence[str] | None = None,
        x: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Coefficients under firm weights (G,) or (B, G): shape (…, len(y), len(x))."""
        return self.solve(self.aggregate(weights), y, x)

    def _partial_out_dummies(self, moments: np.ndarray) -> np.ndarray:
        """Cross-products of the continuous columns after projecting out the dummies."""
        c = len(self.columns)
        cc = moments[..., :c, :c]
        if not self.n_dummies:
            return cc
        # Pseudo-inverse of the dummy block via its eigenvectors with non-zero eigenvalues.
        eigval, eigvec = np.linalg.eigh(moments[..., c:, c:])
        keep = eigval > _RANK_TOL * eigval[..., -1:]
        root = eigvec * np.where(keep, 1 / np.sqrt(np.where(keep, eigval, 1)), 0)[..., None, :]
        proj = moments[..., :c, c:] @ root
        return cc - proj @ np.swapaxes(proj, -1, -2)


def _packing(c: int, n_dummies: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each entry of `cross`: the columns' upper triangle, then columns ×
    dummies (column-major), then the dummies' upper triangle."""
    i, j = np.triu_indices(c)
    ci, cj = np.repeat(np.arange(c), n_dummies), np.tile(np.arange(n_dummies), c) + c
    di, dj = np.triu_indices(n_dummies)
    return np.concatenate([i, ci, di + c]), np.concatenate([j, cj, dj + c])


def _names(names: str | Sequence[str]) -> tuple[str, ...]:
    return (names,) if isinstance(names, str) else tuple(names)
