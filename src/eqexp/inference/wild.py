"""Wild cluster bootstrap, restricted (WCR), for models with fixed effects and few clusters.

Each draw b gives every cluster g one weight v_bg (Rademacher ±1, or Webb's six points)
and builds y* = Xβ_r + Dα_r + v_g·ũ_r from the model estimated under the null (β_r, α_r,
its residuals ũ_r); the model is re-estimated on y* with its fixed effects and its CRV1
statistic compared with the sample's (MacKinnon & Webb 2017; Roodman, Nielsen, MacKinnon &
Webb 2019, "Fast and wild", Stata `boottest`).

No draw is estimated: everything is linear in the weights (Roodman et al. 2019, §3). With
the fixed effects absorbed, X̃ = M_D X and A = (X̃ᵀX̃)⁻¹, a draw's estimate is
    β̂* − β_r = A Σ_h v_h s_h,                    s_h = X̃_hᵀũ_h (cluster h's score).
Its residuals are M_[X,D] w with w = v⊙ũ_r. Split the fixed effects into those nested in
the clusters, D_n (the firm within its province), and the others, D_o (the year). Since v
is constant within a nested group and ũ_r ⊥ D, M_D w = w − Z̃ W Z̃ᵀw with Z̃ = M_{D_n} D_o
and W = (Z̃ᵀZ̃)⁺, so cluster g's score in draw b is
    S_g = v_g s_g − K_g W Σ_h v_h q_h − H_g A Σ_h v_h s_h,
with q_h = D_o,hᵀũ_h, H_g = X̃_gᵀX̃_g and K_g = X̃_gᵀD_o,g (Z̃_gᵀ = D_o,gᵀ on columns ⊥ D_n).
A draw then costs products of G-sized vectors: 9,999 draws on 31 clusters take
milliseconds, whatever the number of rows.

The restricted residuals are linear in the hypothesised value c of a coefficient,
ũ_r(c) = M_[X₋ⱼ,D](y − c·x_j), and so are the draws' numerators and scores: confidence
intervals come from inverting the test over c, each trial value costing O(draws).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from eqexp.inference import InferenceError
from eqexp.inference.extreme import share_at_least
from eqexp.inference.hypothesis import HypothesisTest, p_test

WEIGHTS = ("auto", "rademacher", "webb")
FEW_CLUSTERS = 12  # below this, Webb's weights by default (Rademacher has only 2^G distinct draws)
WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
MAX_OTHER_LEVELS = 2_000  # levels of fixed effects not nested in the clusters (Z̃ᵀZ̃ is dense)
CHUNK_ENTRIES = 2**22  # draws × clusters per block of weights
_RANK_TOL = 1e-10  # eigenvalues of Z̃ᵀZ̃ below this share of the largest: its null space


class WildError(InferenceError):
    """The wild bootstrap cannot be run on this model; the message says why and what to do."""


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class WildDesign:
    """One model's estimation sample with its fixed effects absorbed."""

    yd: np.ndarray  # absorbed outcome (n,)
    xd: np.ndarray  # absorbed regressors (n, k)
    names: tuple[str, ...]
    clusters: np.ndarray  # cluster codes 0..G-1 (n,)
    fe_codes: np.ndarray  # (n, n_fe), codes 0..L-1 per effect
    fe_names: tuple[str, ...]

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.max()) + 1


@dataclass(frozen=True)
class WildTerm:
    """The WCR test of one coefficient = 0, and its confidence interval by test inversion."""

    term: str
    t: float
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class WildJoint:
    """The WCR Wald test that several coefficients are all 0."""

    terms: tuple[str, ...]
    wald: float
    p_value: float


@dataclass(frozen=True)
class WildResult:
    weights: str
    draws: int  # number of draws made (all 2^G sign patterns when they are fewer than asked)
    enumerated: bool
    n_clusters: int
    seed: int
    alpha: float
    terms: tuple[WildTerm, ...]
    joint: WildJoint | None

    @property
    def distribution(self) -> str:
        return f"wild bootstrap ({self.weights}{', every sign pattern' if self.enumerated else ''})"

    def tests(self) -> list[HypothesisTest]:
        """Each term's WCR t test (interval by test inversion), then the joint Wald test."""
        more = {"draws": self.draws, "seed": self.seed, "clusters": self.n_clusters, "alpha": self.alpha}
        out = [p_test("wild", t.term, f"{t.term} = 0", t.t, t.p_value, self.distribution, ci_low=t.ci_low, ci_high=t.ci_high, **more)
               for t in self.terms]
        if self.joint:
            out.append(p_test("wild", "joint", f"{' = '.join(self.joint.terms)} = 0", self.joint.wald, self.joint.p_value,
                              self.distribution, **more))
        return out


def choose_weights(weights: str, n_clusters: int) -> str:
    """`auto`: Webb's with fewer than FEW_CLUSTERS clusters, Rademacher otherwise."""
    if weights not in WEIGHTS:
        raise WildError(f"Unknown bootstrap weights '{weights}': use one of {', '.join(WEIGHTS)}.")
    if weights == "auto":
        return "webb" if n_clusters < FEW_CLUSTERS else "rademacher"
    return weights


def weight_blocks(weights: str, draws: int, n_clusters: int, seed: int) -> Iterator[np.ndarray]:
    """The draws' cluster weights, a block of rows at a time (the block size depends on G only).

    Rademacher weights with 2^G ≤ draws enumerate every sign pattern instead (exact).
    """
    if weights == "rademacher" and 2**n_clusters <= draws:
        patterns = np.arange(2**n_clusters)[:, None] >> np.arange(n_clusters)[None, :] & 1
        yield 2.0 * patterns - 1.0
        return
    rng = np.random.default_rng(seed)
    rows = max(1, CHUNK_ENTRIES // n_clusters)
    for start in range(0, draws, rows):
        size = (min(rows, draws - start), n_clusters)
        yield 2.0 * rng.integers(0, 2, size) - 1.0 if weights == "rademacher" else WEBB[rng.integers(0, 6, size)]


def spanning_levels(codes: np.ndarray, clusters: np.ndarray) -> int:
    """How many levels of `codes` span more than one cluster (0: the effect is nested in the clusters)."""
    pairs = np.unique(codes.astype(np.int64) * (int(clusters.max()) + 1) + clusters)
    return int(np.sum(np.bincount(pairs // (int(clusters.max()) + 1)) > 1))


def _pinv_sym(matrix: np.ndarray) -> np.ndarray:
    if matrix.size == 0:
        return matrix
    values, vectors = np.linalg.eigh(matrix)
    keep = values > _RANK_TOL * max(values.max(), 0.0)
    return (vectors[:, keep] / values[keep]) @ vectors[:, keep].T


class _ClusterAlgebra:
    """Per-cluster cross-products of one design: what every draw's score is built from."""

    def __init__(self, design: WildDesign):
        from eqexp.absorb import Absorber

        self.design = design
        g, n_clusters = design.clusters, design.n_clusters
        spanning = [spanning_levels(c, g) for c in design.fe_codes.T]
        nested = [n == 0 for n in spanning]
        others = [c for c, inside in zip(design.fe_codes.T, nested) if not inside]
        self.levels = [int(c.max()) + 1 for c in others]
        if sum(self.levels) > MAX_OTHER_LEVELS:
            wide = ", ".join(f"{name} ({n:,} of its levels span several clusters)" for name, n in zip(design.fe_names, spanning) if n)
            raise WildError(
                f"The fixed effects {wide} are not nested in the clusters, and together have {sum(self.levels):,} levels; at most "
                f"{MAX_OTHER_LEVELS:,} are supported. Cluster by a variable they are nested in, or leave the units that move "
                "between clusters out of the sample (sample.query).")
        self.others = others
        self.absorber = Absorber([c for c, inside in zip(design.fe_codes.T, nested) if inside]) if any(nested) else None
        xd = design.xd
        k = xd.shape[1]
        self.bread = np.linalg.inv(xd.T @ xd)
        self.gram_x = np.empty((n_clusters, k, k))  # H_g
        for i in range(k):
            for j in range(i, k):
                self.gram_x[:, i, j] = self.gram_x[:, j, i] = np.bincount(g, xd[:, i] * xd[:, j], n_clusters)
        self.cross = np.stack([self.other_sums(xd[:, i]) for i in range(k)], axis=1)  # K_g: (G, k, L)
        self.gram_z_pinv = _pinv_sym(self._gram_z())

    def other_sums(self, column: np.ndarray) -> np.ndarray:
        """D_o,gᵀ column_g for every cluster g: (G, L), the levels of every non-nested effect side by side."""
        g, n_clusters = self.design.clusters, self.design.n_clusters
        blocks = [np.bincount(g * n + c, column, n_clusters * n).reshape(n_clusters, n) for c, n in zip(self.others, self.levels)]
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((n_clusters, 0))

    def _gram_z(self) -> np.ndarray:
        """Z̃ᵀZ̃ = D_oᵀ M_{D_n} D_o, a level at a time (L is small)."""
        total = sum(self.levels)
        gram = np.zeros((total, total))
        offset = 0
        for codes, n in zip(self.others, self.levels):
            for level in range(n):
                dummy = (codes == level).astype(np.float64)
                if self.absorber is not None:
                    dummy = self.absorber.demean(dummy[:, None])[:, 0]
                gram[offset + level] = np.concatenate([np.bincount(c, dummy, m) for c, m in zip(self.others, self.levels)])
            offset += n
        return gram

    def sums(self, residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """s_g = X̃_gᵀe_g (G, k) and q_g = D_o,gᵀe_g (G, L) of residuals e."""
        g, n_clusters = self.design.clusters, self.design.n_clusters
        s = np.column_stack([np.bincount(g, self.design.xd[:, i] * residuals, n_clusters) for i in range(self.design.xd.shape[1])])
        return s, self.other_sums(residuals)

    def direction(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For coefficient j: a = A e_j, κ_g = W K_gᵀa (G, L) and η_g = A H_g a (G, k)."""
        a = self.bread[:, j]
        kappa = np.einsum("gkl,k->gl", self.cross, a) @ self.gram_z_pinv
        eta = np.einsum("gik,k->gi", self.gram_x, a) @ self.bread
        return a, kappa, eta


@dataclass(frozen=True, eq=False)
class _Sums:
    """One residual vector's per-cluster sums."""

    s: np.ndarray  # (G, k)
    q: np.ndarray  # (G, L)


def _scores(v: np.ndarray, sums: _Sums, direction: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """aᵀ(β̂* − β_r) per draw (B,) and the draws' scores along a per cluster (B, G)."""
    a, kappa, eta = direction
    vs = v @ sums.s
    scores = v * (sums.s @ a)[None, :] - (v @ sums.q) @ kappa.T - vs @ eta.T
    return vs @ a, scores


def residualize(design: WildDesign, restricted: Sequence[int], target: np.ndarray) -> np.ndarray:
    """`target` less its projection on the unrestricted regressors (all but `restricted`)."""
    free = [i for i in range(design.xd.shape[1]) if i not in restricted]
    if not free:
        return target.copy()
    x = design.xd[:, free]
    return target - x @ np.linalg.solve(x.T @ x, x.T @ target)


def _unscaled_vcov(algebra: _ClusterAlgebra) -> np.ndarray:
    """A (Σ_g s_g s_gᵀ) A of the unrestricted model: the CRV1 covariance without its small-sample factor."""
    design = algebra.design
    beta = algebra.bread @ (design.xd.T @ design.yd)
    s, _ = algebra.sums(design.yd - design.xd @ beta)
    return algebra.bread @ (s.T @ s) @ algebra.bread


class WildBootstrap:
    """The WCR bootstrap of one model: draws made once, any term or joint test."""

    def __init__(self, design: WildDesign, coef: np.ndarray, vcov: np.ndarray, weights: str = "auto",
                 draws: int = 9999, seed: int = 20240101, alpha: float = 0.05):
        """`coef` and `vcov` are the model's own (CRV1, with its small-sample factor, which the draws share)."""
        self.design, self.coef, self.vcov = design, np.asarray(coef, float), np.asarray(vcov, float)
        self.weights = choose_weights(weights, design.n_clusters)
        self.seed, self.alpha = seed, alpha
        self.algebra = _ClusterAlgebra(design)
        self.factor = float(np.mean(np.diagonal(self.vcov) / np.diagonal(_unscaled_vcov(self.algebra))))
        self.blocks = list(weight_blocks(self.weights, draws, design.n_clusters, seed))
        self.draws = sum(len(b) for b in self.blocks)
        self.enumerated = self.weights == "rademacher" and 2**design.n_clusters <= draws

    def _sums(self, residuals: np.ndarray) -> _Sums:
        return _Sums(*self.algebra.sums(residuals))

    def term_draws(self, j: int) -> tuple[np.ndarray, ...]:
        """Per draw: numerator and squared-score sums at c = 0 and their slopes in c (n0, n1, a00, a01, a11)."""
        design = self.design
        e0 = self._sums(residualize(design, [j], design.yd))
        e1 = self._sums(residualize(design, [j], design.xd[:, j]))
        direction = self.algebra.direction(j)
        parts: list[list[np.ndarray]] = [[], [], [], [], []]
        for v in self.blocks:
            n0, t0 = _scores(v, e0, direction)
            n1, t1 = _scores(v, e1, direction)
            for out, value in zip(parts, (n0, n1, (t0 * t0).sum(1), (t0 * t1).sum(1), (t1 * t1).sum(1))):
                out.append(value)
        return tuple(np.concatenate(p) for p in parts)

    def t_draws(self, j: int, c: float = 0.0) -> np.ndarray:
        """The draws' t statistics for H0: β_j = c."""
        n0, n1, a00, a01, a11 = self.term_draws(j)
        return _t(n0, n1, a00, a01, a11, c, self.factor)

    def term(self, j: int) -> WildTerm:
        """p-value of β_j = 0 and the (1 − α) interval {c : p(c) > α}.

        p(c) is the share of draws with |t*(c)| ≥ |t(c)|, a tie counted (`extreme`): with few
        clusters every sign pattern is enumerated, and the identity pattern and its mirror give
        |t*| = |t| exactly, which rounding alone must not move to either side.
        """
        draws = self.term_draws(j)
        b, se = self.coef[j], float(np.sqrt(self.vcov[j, j]))

        def p_value(c: float) -> float:
            return float(share_at_least(np.abs(_t(*draws, c, self.factor)), abs((b - c) / se)))

        low, high = (_boundary(p_value, b, side * se, self.alpha) for side in (-1, 1))
        return WildTerm(self.design.names[j], b / se, p_value(0.0), low, high)

    def joint(self, js: Sequence[int]) -> WildJoint:
        """Wald test that the coefficients `js` are all 0, restricted draws."""
        js = list(js)
        b = self.coef[js]
        wald = float(b @ np.linalg.solve(self.vcov[np.ix_(js, js)], b))
        sums = self._sums(residualize(self.design, js, self.design.yd))
        directions = [self.algebra.direction(j) for j in js]
        stats = []
        for v in self.blocks:
            found = [_scores(v, sums, d) for d in directions]
            numerators = np.column_stack([n for n, _ in found])
            scores = np.stack([s for _, s in found], axis=1)  # (B, q, G)
            meat = self.factor * np.einsum("bqg,brg->bqr", scores, scores)
            stats.append(np.einsum("bq,bq->b", numerators, np.linalg.solve(meat, numerators[:, :, None])[:, :, 0]))
        wald_draws = np.concatenate(stats)
        return WildJoint(tuple(self.design.names[j] for j in js), wald, float(share_at_least(wald_draws, wald)))

    def run(self, terms: Sequence[str], joint: bool = True) -> WildResult:
        js = [self.design.names.index(t) for t in terms]
        return WildResult(self.weights, self.draws, self.enumerated, self.design.n_clusters, self.seed, self.alpha,
                          tuple(self.term(j) for j in js), self.joint(js) if joint and len(js) > 1 else None)


def _t(n0, n1, a00, a01, a11, c: float, factor: float) -> np.ndarray:
    """t*(c) = (n0 − c·n1) / √(factor·(a00 − 2c·a01 + c²·a11)): the draws under H0: β_j = c."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (n0 - c * n1) / np.sqrt(factor * np.maximum(a00 - 2 * c * a01 + c * c * a11, 0.0))


def _boundary(p_value, estimate: float, step: float, alpha: float, expansions: int = 40, iterations: int = 100) -> float:
    """Where p(c) falls to α on one side of the estimate: bracket by doubling, then bisect.

    Unbounded (±inf) when p stays above α however far out (possible with very few clusters).
    """
    inside, outside = estimate, estimate + 2 * step
    for _ in range(expansions):
        if p_value(outside) <= alpha:
            break
        inside, outside = outside, estimate + 2 * (outside - estimate)
    else:
        return float(np.sign(step) * np.inf)
    for _ in range(iterations):
        middle = 0.5 * (inside + outside)
        if middle in (inside, outside):
            break
        inside, outside = (middle, outside) if p_value(middle) > alpha else (inside, middle)
    return 0.5 * (inside + outside)
