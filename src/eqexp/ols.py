"""Least squares on absorbed columns: coefficients, residuals, the covariance of the
coefficients and the fit statistics, with pyfixest's (= fixest's) conventions.

Small-sample corrections follow pyfixest's default `ssc(k_adj=True, k_fixef="nonnested",
G_adj=True, G_df="min")`: fixed effects nested in the clusters do not count in k, CRV
multiplies by G/(G-1)·(N-1)/(N-k), HC1 by N/(N-k), iid by (N-1)/(N-k); t tails use G-1
degrees of freedom when clustered, N-k otherwise. Multi-way clustering is Cameron–Gelbach–
Miller's V₁ + V₂ − V₁₂ with the smallest G in every term, as pyfixest and fixest do.
The nesting count and the per-cluster meat come from pyfixest's own Rust core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eqexp.distributions import t_quantile, t_two_sided

COLLINEARITY_TOL = 1e-9  # pyfixest's collin_tol


class CollinearError(ValueError):
    """Some regressors are collinear with the others or the fixed effects."""

    def __init__(self, names: list[str]):
        super().__init__(", ".join(names))
        self.names = names


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class LeastSquares:
    """One estimated model: everything tables, tests and tracking read."""

    names: tuple[str, ...]
    coef: np.ndarray
    vcov: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    conf_low: np.ndarray
    conf_high: np.ndarray
    n_obs: int
    df_t: int
    n_clusters: int | None
    r2: float
    r2_within: float


@dataclass(frozen=True)
class Clusters:
    """Cluster codes of the sample rows (one column per clustering dimension) and their names."""

    names: tuple[str, ...]
    codes: np.ndarray  # (n, dims) codes 0..G-1 in each dimension


def solve(xd: np.ndarray, yd: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """β = (X̃ᵀX̃)⁻¹X̃ᵀỹ, the residuals and (X̃ᵀX̃)⁻¹; collinear regressors raise `CollinearError`."""
    from pyfixest.core.collinear import find_collinear_variables

    with np.errstate(over="ignore", invalid="ignore"):  # values that overflow: a named error after the fit (estimate._check_finite)
        xtx = np.ascontiguousarray(xd.T @ xd)
    excluded, _, all_removed = find_collinear_variables(xtx, COLLINEARITY_TOL)
    flagged = np.asarray(excluded).ravel().astype(bool)
    if all_removed or flagged.any():
        raise CollinearError([n for n, bad in zip(names, flagged) if bad] or list(names))
    bread = np.linalg.inv(xtx)
    beta = np.linalg.solve(xtx, xd.T @ yd)
    return beta, yd - xd @ beta, bread


def small_sample(n_obs: int, k: int, k_fe: int, n_fe: int, kind: str, n_clusters: int = 0,
                 k_fe_nested: int = 0, n_fe_nested: int = 0) -> tuple[float, int]:
    """pyfixest's `get_ssc` with its default `ssc()`: the factor and the t degrees of freedom."""
    df_k = dof_k(k, k_fe, n_fe, k_fe_nested, n_fe_nested)
    if kind == "hetero":
        return n_obs / (n_obs - df_k), n_obs - df_k
    factor = (n_obs - 1) / (n_obs - df_k)
    if kind == "CRV":
        return factor * n_clusters / (n_clusters - 1), n_clusters - 1
    return factor, n_obs - df_k


def dof_k(k: int, k_fe: int, n_fe: int, k_fe_nested: int = 0, n_fe_nested: int = 0) -> int:
    """The K of the small-sample correction: regressors and fixed-effect levels, those nested in the clusters not counted."""
    k_fe_adj = k_fe - (n_fe - 1) if n_fe > 1 else k_fe
    return k if n_fe == 0 else k + k_fe_adj - k_fe_nested + (n_fe_nested if k_fe_nested else 0)


def nested_levels(fe_names: Sequence[str], fe_codes: np.ndarray, clusters: Clusters, k_fe: np.ndarray) -> tuple[int, int]:
    """Levels of fixed effects nested in the clusters (they cost no degree of freedom), and how many such effects."""
    from pyfixest.core.nested_fixed_effects import count_fixef_fully_nested_all

    flags, count = count_fixef_fully_nested_all(
        all_fixef_array=np.array([n.replace("^", "_") for n in fe_names], dtype=str),
        cluster_colnames=np.array(clusters.names, dtype=str),
        cluster_data=np.ascontiguousarray(clusters.codes).astype(np.uintp),
        fe_data=np.ascontiguousarray(fe_codes).astype(np.uintp),
    )
    return (int(np.sum(k_fe[np.asarray(flags, dtype=bool)])) if count > 0 else 0), int(count)


def cluster_sums(scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """s_g = the sum of the scores of cluster g, one row per cluster (codes 0..G-1)."""
    n_clusters = int(codes.max()) + 1
    return np.column_stack([np.bincount(codes, weights=scores[:, j], minlength=n_clusters) for j in range(scores.shape[1])])


def cluster_meat(scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Σ_g s_g s_gᵀ."""
    sums = cluster_sums(scores, codes)
    return sums.T @ sums


def with_intersection(clusters: Clusters) -> Clusters:
    """Two-way clustering adds the intersection of the two dimensions (subtracted in V)."""
    if clusters.codes.shape[1] != 2:
        return clusters
    pairs = clusters.codes[:, 0].astype(np.int64) * (int(clusters.codes[:, 1].max()) + 1) + clusters.codes[:, 1]
    inter = np.unique(pairs, return_inverse=True)[1].ravel()
    return Clusters((*clusters.names, "cluster_intersection"), np.column_stack([clusters.codes, inter]))


def covariance(xd: np.ndarray, resid: np.ndarray, bread: np.ndarray, kind: str, fe_names: Sequence[str],
               fe_codes: np.ndarray | None, clusters: Clusters | None = None) -> tuple[np.ndarray, int, int | None]:
    """V(β̂) of type iid, hetero (HC1) or CRV (CRV1, one- or multi-way); its t degrees of freedom and G."""
    n_obs, k = xd.shape
    if kind == "iid":
        factor, df_t, _ = correction(n_obs, k, kind, fe_names, fe_codes, clusters)
        return factor * bread * (resid @ resid / (n_obs - 1)), df_t, None
    return sandwich(xd * resid[:, None], bread, k, kind, fe_names, fe_codes, clusters)


def correction(n_obs: int, k: int, kind: str, fe_names: Sequence[str], fe_codes: np.ndarray | None,
               clusters: Clusters | None = None) -> tuple[float, int, int | None]:
    """The small-sample factor, the t degrees of freedom and G (clustered) of a model with k regressors."""
    n_fe = len(fe_names)
    k_fe = np.array([int(c.max()) + 1 for c in fe_codes.T]) if n_fe else np.zeros(0, int)
    if kind != "CRV":
        factor, df_t = small_sample(n_obs, k, int(k_fe.sum()), n_fe, kind)
        return factor, df_t, None
    dims = with_intersection(clusters)
    nested, n_nested = nested_levels(fe_names, fe_codes, dims, k_fe) if n_fe else (0, 0)
    g = min(int(dims.codes[:, d].max()) + 1 for d in range(dims.codes.shape[1]))  # codes are 0..G-1
    factor, df_t = small_sample(n_obs, k, int(k_fe.sum()), n_fe, "CRV", g, nested, n_nested)
    return factor, df_t, g


def residual_df(n_obs: int, k: int, kind: str, fe_names: Sequence[str], fe_codes: np.ndarray | None,
                clusters: Clusters | None = None) -> int:
    """N − K, K as the correction counts it for this vcov (fixest's denominator of `ivf` and `ivwald`)."""
    n_fe = len(fe_names)
    k_fe = np.array([int(c.max()) + 1 for c in fe_codes.T]) if n_fe else np.zeros(0, int)
    nested = nested_levels(fe_names, fe_codes, with_intersection(clusters), k_fe) if kind == "CRV" and n_fe else (0, 0)
    return n_obs - dof_k(k, int(k_fe.sum()), n_fe, *nested)


def sandwich(scores: np.ndarray, bread: np.ndarray, k: int, kind: str, fe_names: Sequence[str], fe_codes: np.ndarray | None,
             clusters: Clusters | None = None) -> tuple[np.ndarray, int, int | None]:
    """bread · meat · bread of per-row `scores` (HC1 or CRV1, one- or multi-way), corrected as a model with k regressors."""
    factor, df_t, g = correction(len(scores), k, kind, fe_names, fe_codes, clusters)
    return factor * bread @ meat(scores, kind, clusters) @ bread, df_t, g


def meat(scores: np.ndarray, kind: str, clusters: Clusters | None = None) -> np.ndarray:
    """Σ sᵢsᵢᵀ (hetero) or Σ_g s_g s_gᵀ (CRV; two-way: V₁ + V₂ − V₁₂), uncorrected."""
    if kind == "hetero":
        return scores.T @ scores
    dims = with_intersection(clusters)
    return sum(sign * cluster_meat(scores, dims.codes[:, d]) for d, sign in zip(range(dims.codes.shape[1]), (1, 1, -1)))


def least_squares(xd: np.ndarray, yd: np.ndarray, y: np.ndarray, names: Sequence[str], kind: str,
                  fe_names: Sequence[str], fe_codes: np.ndarray | None, clusters: Clusters | None = None,
                  alpha: float = 0.05) -> LeastSquares:
    """OLS of absorbed ỹ on absorbed X̃ with its inference; `y` (raw) gives the total R²."""
    beta, resid, bread = solve(xd, yd, names)
    return with_inference(xd, beta, resid, bread, yd, y, names, kind, fe_names, fe_codes, clusters, alpha)


def with_inference(xd: np.ndarray, beta: np.ndarray, resid: np.ndarray, bread: np.ndarray, yd: np.ndarray, y: np.ndarray,
                   names: Sequence[str], kind: str, fe_names: Sequence[str], fe_codes: np.ndarray | None,
                   clusters: Clusters | None = None, alpha: float = 0.05) -> LeastSquares:
    """The estimated model of coefficients β with bread (X̃ᵀX̃)⁻¹ and residuals (2SLS: X̃ the fitted regressors)."""
    vcov, df_t, g = covariance(xd, resid, bread, kind, fe_names, fe_codes, clusters)
    se = np.sqrt(np.diagonal(vcov))
    stat = beta / se
    half = abs(t_quantile(alpha / 2, df_t)) * se
    ssu = float(resid @ resid)
    centred = y - y.mean()
    return LeastSquares(
        names=tuple(names), coef=beta, vcov=vcov, se=se, statistic=stat, p_value=t_two_sided(stat, df_t),
        conf_low=beta - half, conf_high=beta + half, n_obs=int(xd.shape[0]), df_t=int(df_t), n_clusters=g,
        r2=1 - ssu / float(centred @ centred), r2_within=1 - ssu / float(yd @ yd) if len(fe_names) else float("nan"),
    )
