"""The diagnostics of a 2SLS model that referees ask for (ivreg2 / ivreghdfe's block), as typed tests.

Everything is computed on the model's absorbed columns (`eqexp.iv.Instrumented`) with the
exogenous regressors W partialled out (Frisch–Waugh–Lovell): X⊥ = M_W X̃ (the p endogenous
regressors), Z⊥ = M_W Z̃ (the l excluded instruments), y⊥ = M_W ỹ; Π̂ = (Z⊥ᵀZ⊥)⁻¹Z⊥ᵀX⊥ are the
first stages' coefficients on the instruments. "The model's vcov" is its iid, HC1 or CRV1
(one- or two-way) sandwich with fixest's small-sample factor (eqexp.ols), as the first stage's.

- first_stage_f: F of the excluded instruments in each first stage, iid, σ² = RSS/(N − K) with K
  as fixest's correction counts it for the model's vcov (fixed effects nested in the clusters
  not counted), and F(l, N − K): fixest's `ivf`. `kp_wald_f` (one regressor) uses the same N − K.
- kp_wald_f: one endogenous regressor: the first stage's Wald F with the model's vcov (fixest's
  `ivwald`); several: the Kleibergen–Paap (2006) rk Wald statistic of rank(Π) = p − 1 with the
  model's covariance of vec(Π̂), divided by l (with one regressor the two are the same number).
- cragg_donald_f: λ_min(Σ̂^-½ X⊥ᵀP_Z X⊥ Σ̂^-½)/l, Σ̂ = X⊥ᵀM_Z X⊥/(N − K) (K as in first_stage_f,
  so with one regressor it is first_stage_f), against Stock & Yogo's (2005) critical
  values for 10/15/20/25 % maximal size of a nominal 5 % 2SLS t test.
- kp_lm: the KP rk LM statistic, the covariance of Z⊥ᵀX⊥ evaluated under Π = 0 (X⊥'s own
  values as the scores' residuals, as ranktest's LM form), χ²(l − p + 1). With iid errors it is
  Anderson's canonical-correlation LM, N·ρ²_min.
- effective_f: Montiel Olea & Pflueger (2013), one endogenous regressor:
  F_eff = Π̂ᵀZ⊥ᵀZ⊥Π̂ / tr(V̂(Π̂) Z⊥ᵀZ⊥), with the simplified (Patnaik) critical value for a worst-case
  bias τ = 10 % of the Nagar bias at the 5 % level.
- anderson_rubin: the AR test of the endogenous coefficients (the regression of y⊥ − X⊥β₀ on Z⊥
  with the model's vcov, F(l, df)), from small sums that give AR(β) for any β at once
  (`ArMoments`); with one endogenous regressor its confidence set by test inversion, which may
  be an interval, two half-lines, the whole line or empty; with two (a squared treatment), the
  joint test and the treatment coefficient's set by projection (`<term>_projection`: β₂
  profiled out, conservative).
- sargan (iid) / hansen_j (robust) when over-identified: N·R² of the 2SLS residuals on the
  instruments; Hansen's J, the two-step GMM criterion with the scores' covariance at the 2SLS residuals.
- endogeneity: Wu–Hausman, fixest's `wh` (the F of the first-stage residuals added to the
  second stage, iid); and the C statistic (difference-in-Sargan/Hansen, robust with the model's
  scores): J with the endogenous regressors as instruments too minus J without, both with
  the covariance of the scores at the OLS residuals (so C ≥ 0), χ²(p).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, stats

from eqexp.distributions import f_sf
from eqexp.inference.hypothesis import HypothesisTest, not_applicable, p_test
from eqexp.iv import Instrumented
from eqexp.ols import correction, meat, residual_df, sandwich, with_intersection

# Stock & Yogo (2005), Table 5.2: critical values of the Cragg–Donald F for a 2SLS t test of
# nominal size 5 % whose maximal size is 10/15/20/25 %; by (endogenous regressors p, excluded
# instruments l). Checked entry by entry against ivreg2's own tables (livreg2's s_cdsy, ivsize10–25).
STOCK_YOGO_SIZE = {
    (1, 1): (16.38, 8.96, 6.66, 5.53), (1, 2): (19.93, 11.59, 8.75, 7.25), (1, 3): (22.30, 12.83, 9.54, 7.80),
    (1, 4): (24.58, 13.96, 10.26, 8.31), (1, 5): (26.87, 15.09, 10.98, 8.84),
    (2, 2): (7.03, 4.58, 3.95, 3.63), (2, 3): (13.43, 8.18, 6.40, 5.45), (2, 4): (16.87, 9.93, 7.54, 6.28),
    (2, 5): (19.45, 11.22, 8.38, 6.89),
}
SIZES = (10, 15, 20, 25)
TAU = 0.10  # the effective F's worst-case bias, relative to the OLS bias (Nagar)


@dataclass(frozen=True, eq=False)
class Partialled:
    """The model's columns with the exogenous regressors partialled out, and how to correct a sandwich."""

    y: np.ndarray
    x: np.ndarray  # n × p
    z: np.ndarray  # n × l
    data: Instrumented

    @property
    def p(self) -> int:
        return self.x.shape[1]

    @property
    def l(self) -> int:  # noqa: E743
        return self.z.shape[1]

    @functools.cached_property
    def ar(self) -> "ArMoments":
        """The Anderson–Rubin statistic's sums, computed once."""
        return ar_moments(self)

    @functools.cached_property
    def first_stage(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Π̂ (l × p), the first-stage residuals V̂ (n × p) and (Z⊥ᵀZ⊥)⁻¹, computed once."""
        zz_inv = np.linalg.inv(self.z.T @ self.z)
        pi = zz_inv @ (self.z.T @ self.x)
        return pi, self.x - self.z @ pi, zz_inv

def partial_out(data: Instrumented) -> Partialled:
    """M_W applied to y, X and Z at once (one solve of the normal equations)."""
    w = data.exogenous
    block = np.column_stack([data.y, data.endogenous, data.instruments])
    if w.shape[1]:
        block = block - w @ np.linalg.solve(w.T @ w, w.T @ block)
    p = data.endogenous.shape[1]
    return Partialled(np.ascontiguousarray(block[:, 0]), block[:, 1:p + 1], block[:, p + 1:], data)


def covariance(part: Partialled, scores: np.ndarray, bread: np.ndarray, k: int, kind: str | None = None) -> tuple[np.ndarray, int]:
    """bread · meat · bread of stacked per-row scores with the model's vcov kind and fixest's factor for k regressors."""
    data = part.data
    v, df_t, _ = sandwich(scores, bread, k, kind or data.kind, data.fe_names, data.fe_codes, data.clusters)
    return v, df_t


def first_stage_coefficients(part: Partialled) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Π̂ (l × p), the first-stage residuals V̂ (n × p) and (Z⊥ᵀZ⊥)⁻¹."""
    return part.first_stage


def vec_pi_covariance(part: Partialled, resid: np.ndarray, kind: str | None = None) -> tuple[np.ndarray, int]:
    """The covariance of vec(Π̂) (equation by equation) with the model's vcov; iid: Σ̂ ⊗ (Z⊥ᵀZ⊥)⁻¹."""
    data = part.data
    kind = kind or data.kind
    k_first = part.l + data.exogenous.shape[1]
    _, _, zz_inv = first_stage_coefficients(part)
    if kind == "iid":
        factor, df_t, _ = correction(data.n_obs, k_first, "iid", data.fe_names, data.fe_codes, data.clusters)
        sigma = factor * resid.T @ resid / (data.n_obs - 1)
        return np.kron(sigma, zz_inv), df_t
    scores = np.column_stack([part.z * resid[:, [j]] for j in range(resid.shape[1])])
    bread = np.kron(np.eye(resid.shape[1]), zz_inv)
    return covariance(part, scores, bread, k_first, kind)


def rk_statistic(part: Partialled, pi: np.ndarray, v_pi: np.ndarray) -> float:
    """Kleibergen–Paap's rk statistic of H0: rank(Π) = p − 1, given Π̂ and the covariance of vec(Π̂)."""
    p, l = part.p, part.l
    f = np.linalg.cholesky(part.z.T @ part.z).T  # FᵀF = Z⊥ᵀZ⊥
    g = np.linalg.cholesky(part.x.T @ part.x).T  # GᵀG = X⊥ᵀX⊥
    g_inv = np.linalg.inv(g)
    theta = f @ pi @ g_inv
    u, _, vt = np.linalg.svd(theta)
    v = vt.T
    q = p - 1
    u22, v22 = u[q:, q:], v[q:, q:]
    a = u[:, q:] @ np.linalg.solve(u22, _sqrtm(u22 @ u22.T))  # l × (l − q)
    b = _sqrtm(v22 @ v22.T) @ np.linalg.solve(v22.T, v[:, q:].T)  # (p − q) × p
    kron = np.kron(b, a.T)
    lam = kron @ theta.reshape(-1, order="F")
    transform = np.kron(g_inv.T, f)  # vec(FΠG⁻¹) = (G⁻ᵀ ⊗ F) vec(Π)
    omega = kron @ transform @ v_pi @ transform.T @ kron.T
    return float(lam @ np.linalg.solve(omega, lam))


def _sqrtm(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def first_df(part: Partialled) -> int:
    """N − K of the first stage, K as fixest's correction counts it for the model's vcov (its `ivf`, `ivwald`)."""
    data = part.data
    return residual_df(data.n_obs, part.l + data.exogenous.shape[1], data.kind, data.fe_names, data.fe_codes, data.clusters)


def first_stage_f(part: Partialled) -> list[HypothesisTest]:
    pi, resid, zz_inv = first_stage_coefficients(part)
    df = first_df(part)
    v_pi = np.kron(resid.T @ resid / df, zz_inv)
    return [_wald_f("first_stage_f", name, f"the excluded instruments do not enter {name}'s first stage (iid)",
                    pi[:, j], v_pi[j * part.l:(j + 1) * part.l, j * part.l:(j + 1) * part.l], df)
            for j, name in enumerate(part.data.endogenous_names)]


def _wald_f(test: str, hypothesis: str, null: str, b: np.ndarray, v: np.ndarray, df: int, **more) -> HypothesisTest:
    f = float(b @ np.linalg.solve(v, b)) / len(b)
    return p_test(test, hypothesis, null, f, f_sf(f, len(b), df), "F", len(b), df, **more)


def kp_wald_f(part: Partialled) -> HypothesisTest:
    pi, resid, _ = first_stage_coefficients(part)
    v_pi, _ = vec_pi_covariance(part, resid)
    df = first_df(part)
    clusters = _clusters(part)
    if part.p == 1:
        return _wald_f("kp_wald_f", "all", "the excluded instruments do not enter the first stage (model's vcov)", pi[:, 0], v_pi, df,
                       clusters=clusters)
    rk = rk_statistic(part, pi, v_pi)
    dof = part.l - part.p + 1
    test = p_test("kp_wald_f", "all", f"rank(Π) = {part.p - 1}: the model is under-identified (KP rk Wald, model's vcov)",
                  rk, float(stats.chi2.sf(rk, dof)), "chi2", dof, clusters=clusters)
    values = STOCK_YOGO_SIZE.get((part.p, part.l))
    against = f"; Stock–Yogo 10 % maximal size {values[0]:g}" if values else ""
    return replace(test, statistic=rk / part.l, verdict=f"KP rk Wald F = rk/l = {rk / part.l:.4g}{against}; {test.verdict}")


def kp_lm(part: Partialled) -> HypothesisTest:
    pi, _, _ = first_stage_coefficients(part)
    v_pi, _ = vec_pi_covariance(part, part.x)  # under Π = 0: the endogenous regressors are their own residuals
    rk = rk_statistic(part, pi, v_pi) * _lm_rescale(part)
    dof = part.l - part.p + 1
    return p_test("kp_lm", "all", f"rank(Π) = {part.p - 1}: the model is under-identified (KP rk LM)", rk,
                  float(stats.chi2.sf(rk, dof)), "chi2", dof, clusters=_clusters(part))


def _lm_rescale(part: Partialled) -> float:
    """The LM form has no small-sample factor: undo the one `vec_pi_covariance` applied."""
    data = part.data
    factor, _, _ = correction(data.n_obs, part.l + data.exogenous.shape[1], data.kind, data.fe_names, data.fe_codes, data.clusters)
    return factor * data.n_obs / (data.n_obs - 1) if data.kind == "iid" else factor


def cragg_donald_f(part: Partialled) -> list[HypothesisTest]:
    pi, resid, _ = first_stage_coefficients(part)
    df = first_df(part)
    sigma = resid.T @ resid / df
    explained = pi.T @ (part.z.T @ part.z) @ pi  # X⊥ᵀP_Z X⊥
    root = np.linalg.inv(np.linalg.cholesky(sigma))
    f = float(np.linalg.eigvalsh(root @ explained @ root.T).min()) / part.l
    values = STOCK_YOGO_SIZE.get((part.p, part.l))
    null = "the instruments are weak: a nominal 5 % 2SLS t test has a true size above 10 % (Stock–Yogo)"
    if values is None:
        verdict = (f"Cragg–Donald F = {f:.4g}; Stock–Yogo tabulate no critical values for {part.p} endogenous regressor(s) and "
                   f"{part.l} instruments here (eqexp holds p ≤ 2, l ≤ 5)")
        return [HypothesisTest("cragg_donald_f", "all", null, statistic=f, distribution="Stock-Yogo", df=part.l, df_denom=df, verdict=verdict)]
    passed = [size for size, cv in zip(SIZES, values) if f > cv]
    words = (f"below the 25 % critical value {values[-1]:g}: the instruments are weak" if not passed
             else f"above the {min(passed)} % maximal-size critical value {values[SIZES.index(min(passed))]:g}")
    verdict = (f"Cragg–Donald F = {f:.4g}, {words} (Stock–Yogo 10/15/20/25 %: "
               f"{' / '.join(f'{v:g}' for v in values)})")
    rows = [HypothesisTest("cragg_donald_f", "all", null, statistic=f, distribution="Stock-Yogo", df=part.l, df_denom=df,
                           point=values[0], reject=bool(f > values[0]), verdict=verdict)]
    for size, cv in zip(SIZES, values):
        rows.append(HypothesisTest("cragg_donald_f", f"size_{size}", f"a nominal 5 % 2SLS t test has a true size above {size} %",
                                   statistic=f, distribution="Stock-Yogo", df=part.l, df_denom=df, point=cv, reject=bool(f > cv),
                                   verdict=f"{'Rejected' if f > cv else 'Not rejected'}: F = {f:.4g} vs {size} % critical value {cv:g}"))
    return rows


def effective_f(part: Partialled, alpha: float = 0.05) -> HypothesisTest:
    null = f"the instruments are weak: the 2SLS Nagar bias may exceed {TAU:.0%} of OLS's (Montiel Olea–Pflueger)"
    if part.p != 1:
        return not_applicable("effective_f", "all", null, f"the effective F is defined for one endogenous regressor (the model has {part.p})")
    pi, resid, _ = first_stage_coefficients(part)
    v_pi, _ = vec_pi_covariance(part, resid)
    zz = part.z.T @ part.z
    f_eff = float(pi[:, 0] @ zz @ pi[:, 0]) / float(np.trace(v_pi @ zz))
    cv = effective_f_critical_value(v_pi, zz, alpha)
    verdict = (f"{'Rejected' if f_eff > cv else 'Not rejected'} at {alpha:g}: effective F = {f_eff:.4g} "
               f"{'above' if f_eff > cv else 'below'} its critical value {cv:.4g} (τ = {TAU:.0%})")
    return HypothesisTest("effective_f", "all", null, statistic=f_eff, distribution="MOP", df=part.l, point=cv, alpha=alpha,
                          reject=bool(f_eff > cv), clusters=_clusters(part), verdict=verdict)


def effective_f_critical_value(v_pi: np.ndarray, zz: np.ndarray, alpha: float = 0.05, tau: float = TAU) -> float:
    """Montiel Olea–Pflueger's simplified (Patnaik) critical value: the 1 − alpha quantile of χ²(K_eff, K_eff/τ)/K_eff,
    K_eff = tr(S)²(1 + 2x) / (tr(SᵀS) + 2x tr(S) λ_max(S)), x = 1/τ, S = (Z⊥ᵀZ⊥)^½ V̂(Π̂) (Z⊥ᵀZ⊥)^½."""
    root = _sqrtm(zz)
    s = root @ v_pi @ root
    x = 1 / tau
    k_eff = np.trace(s) ** 2 * (1 + 2 * x) / (np.trace(s.T @ s) + 2 * x * np.trace(s) * np.linalg.eigvalsh(s).max())
    return float(stats.ncx2.ppf(1 - alpha, k_eff, x * k_eff) / k_eff)


@dataclass(frozen=True)
class ConfidenceSet:
    """The AR confidence set: a union of intervals (±inf for unbounded ends); empty when every value is rejected."""

    intervals: tuple[tuple[float, float], ...]

    def __str__(self) -> str:
        if not self.intervals:
            return "empty (every value is rejected)"
        if self.intervals == ((-math.inf, math.inf),):
            return "the whole real line (unbounded: the instruments do not identify the coefficient)"
        text = " ∪ ".join(f"[{lo:.4g}, {hi:.4g}]".replace("[-inf", "(-inf").replace("inf]", "inf)") for lo, hi in self.intervals)
        unbounded = any(math.isinf(lo) or math.isinf(hi) for lo, hi in self.intervals)
        shape = ("unbounded and disjoint" if unbounded and len(self.intervals) > 1 else "unbounded" if unbounded
                 else "disjoint" if len(self.intervals) > 1 else "bounded")
        return f"{text} ({shape})"


def _ar_pieces(part: Partialled) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """γ(β) = a − bβ, the coefficients of y⊥ − X⊥β on Z⊥, and e(β) = e_y − e_x β their residuals (one endogenous regressor)."""
    zz_inv = part.first_stage[2]
    a, b = zz_inv @ (part.z.T @ part.y), zz_inv @ (part.z.T @ part.x[:, 0])
    return a, b, part.y - part.z @ a, part.x[:, 0] - part.z @ b


@dataclass(frozen=True, eq=False)
class ArMoments:
    """Everything AR(β) needs, as small sums: with Y = [y⊥, X⊥] and b = (1, −β), the residual of y⊥ − X⊥β on Z⊥ is
    r·b (r = M_Z Y) and its coefficients γ = (Z⊥ᵀZ⊥)⁻¹ZᵀY·b, so the scores' covariance is Σ_d ± Σ_g C_g b bᵀ C_gᵀ with
    C_g = Σ_{i∈g} z_i r_iᵀ: the tensors T_d = Σ_g C_g ⊗ C_g hold it for every β (iid: rᵀr)."""

    gamma: np.ndarray  # l × (1 + p): γ = gamma @ b
    zz: np.ndarray
    zz_inv: np.ndarray
    tensors: tuple[tuple[float, np.ndarray], ...]  # (sign, T) per clustering dimension; iid: ((1, rᵀr),)
    factor: float
    df: int
    kind: str


def ar_moments(part: Partialled) -> ArMoments:
    data = part.data
    k = part.l + data.exogenous.shape[1]
    zz_inv = part.first_stage[2]
    big_y = np.column_stack([part.y, part.x])
    zy = part.z.T @ big_y
    r = big_y - part.z @ (zz_inv @ zy)
    factor, df, _ = correction(data.n_obs, k, data.kind, data.fe_names, data.fe_codes, data.clusters)
    if data.kind == "iid":
        tensors = ((1.0, r.T @ r),)
    else:
        outer = (part.z[:, :, None] * r[:, None, :]).reshape(len(r), -1)  # z_i ⊗ r_i, one row each
        dims = [None] if data.kind == "hetero" else list(with_intersection(data.clusters).codes.T)
        tensors = []
        for codes, sign in zip(dims, (1.0, 1.0, -1.0)):
            sums = outer if codes is None else np.column_stack([np.bincount(codes, weights=c) for c in outer.T])
            c = sums.reshape(len(sums), part.l, -1)
            tensors.append((sign, np.einsum("gik,gjl->ikjl", c, c)))
        tensors = tuple(tensors)
    return ArMoments(zz_inv @ zy, part.z.T @ part.z, zz_inv, tensors, factor, df, data.kind)


def ar_statistics(moments: ArMoments, betas: np.ndarray) -> np.ndarray:
    """AR F statistics of H0: β = each row of `betas` (N × p), at once."""
    b = np.column_stack([np.ones(len(betas)), -np.asarray(betas, float)])
    gamma = b @ moments.gamma.T  # N × l
    l = gamma.shape[1]  # noqa: E741
    if moments.kind == "iid":
        (_, rr), = moments.tensors
        sigma = np.einsum("nk,kl,nl->n", b, rr, b) / moments.df  # fixest's iid factor (N − 1)/(N − K) times e'e/(N − 1)
        return np.einsum("ni,ij,nj->n", gamma, moments.zz, gamma) / l / sigma
    meat = sum(sign * np.einsum("ikjl,nk,nl->nij", t, b, b) for sign, t in moments.tensors)
    v = moments.factor * moments.zz_inv @ meat @ moments.zz_inv
    return np.einsum("ni,ni->n", gamma, np.linalg.solve(v, gamma[:, :, None])[:, :, 0]) / l


def ar_statistic(part: Partialled, beta0: np.ndarray) -> tuple[float, int]:
    """AR F statistic of H0: β_endogenous = beta0 with the model's vcov, and its denominator degrees of freedom."""
    moments = part.ar
    return float(ar_statistics(moments, np.atleast_2d(beta0))[0]), moments.df


def ar_confidence_set(part: Partialled, alpha: float = 0.05) -> ConfidenceSet:
    """{β₀: AR(β₀) not rejected} for one endogenous regressor: exact where the inequality is a quadratic in β₀ (one
    instrument, or iid errors); else the accepted runs of a grid of ±50 2SLS standard errors, their ends refined to
    the root of AR(β₀) = critical value (an accepted grid end meaning unbounded)."""
    data = part.data
    k = part.l + data.exogenous.shape[1]
    _, df = ar_statistic(part, np.zeros(1))
    crit = float(stats.f.isf(alpha, part.l, df)) * part.l
    a, b, ey, ex = _ar_pieces(part)
    zz_inv = part.first_stage[2]
    if part.l == 1 or data.kind == "iid":
        # γ'V⁻¹γ ≤ crit with V = V_yy − 2β V_xy + β² V_xx: for l = 1, (a − bβ)² ≤ crit·V(β); iid: γ'(Z'Z)γ ≤ crit·σ²(β)
        if data.kind == "iid":
            factor, _, _ = correction(data.n_obs, k, "iid", data.fe_names, data.fe_codes, data.clusters)
            c = factor / (data.n_obs - 1)
            zz = part.z.T @ part.z
            quad = (b @ zz @ b - crit * c * ex @ ex, -2 * (a @ zz @ b - crit * c * ey @ ex), a @ zz @ a - crit * c * ey @ ey)
        else:
            def v(e: np.ndarray) -> float:  # V(γ) with residuals e; the meat is bilinear in e
                return float(covariance(part, part.z * e[:, None], zz_inv, k)[0][0, 0])

            v_yy, v_xx = v(ey), v(ex)
            v_xy = (v(ey + ex) - v_yy - v_xx) / 2
            quad = (b[0] ** 2 - crit * v_xx, -2 * (a[0] * b[0] - crit * v_xy), a[0] ** 2 - crit * v_yy)
        return _quadratic_set(*map(float, quad))
    return _grid_set(part, crit / part.l)


def _quadratic_set(a2: float, a1: float, a0: float) -> ConfidenceSet:
    """{β: a2 β² + a1 β + a0 ≤ 0}."""
    disc = a1 * a1 - 4 * a2 * a0
    if abs(a2) < 1e-300:
        if a1 == 0:
            return ConfidenceSet(((-math.inf, math.inf),) if a0 <= 0 else ())
        root = -a0 / a1
        return ConfidenceSet(((-math.inf, root),) if a1 > 0 else ((root, math.inf),))
    if disc < 0:
        return ConfidenceSet(() if a2 > 0 else ((-math.inf, math.inf),))
    lo, hi = sorted(((-a1 - math.sqrt(disc)) / (2 * a2), (-a1 + math.sqrt(disc)) / (2 * a2)))
    return ConfidenceSet(((lo, hi),) if a2 > 0 else ((-math.inf, lo), (hi, math.inf)))


def _grid_set(part: Partialled, crit: float, points: int = 4001) -> ConfidenceSet:
    """The accepted runs of a grid of ±50 standard errors around 2SLS, each end found exactly between its grid points
    (an accepted grid end: unbounded that way)."""
    centre, se = _two_sls(part)
    grid = np.linspace(centre[0] - 50 * se[0], centre[0] + 50 * se[0], points)
    accepted = ar_statistics(part.ar, grid[:, None]) <= crit
    return _accepted_set(grid, accepted, lambda b: float(ar_statistics(part.ar, np.array([[b]]))[0]) - crit)


def _accepted_set(grid: np.ndarray, accepted: np.ndarray, excess) -> ConfidenceSet:
    """The runs of accepted grid points as intervals, each end the root of `excess` between its neighbours."""
    intervals = []
    for start, end in _runs(accepted):
        low = -math.inf if start == 0 else optimize.brentq(excess, grid[start - 1], grid[start], xtol=1e-14, rtol=1e-12)
        high = math.inf if end == len(grid) - 1 else optimize.brentq(excess, grid[end], grid[end + 1], xtol=1e-14, rtol=1e-12)
        intervals.append((float(low), float(high)))
    return ConfidenceSet(tuple(intervals))


def projection_set(part: Partialled, alpha: float = 0.05, points: int = 801) -> ConfidenceSet:
    """The AR confidence set of the first endogenous coefficient by projection (several endogenous regressors):
    {β₁: min over the others of AR(β₁, β₂) not rejected at F(l, df)}, conservative. Two endogenous regressors:
    β₂ minimised on a grid of ±50 standard errors, then exactly near the grid's minimum."""
    moments = part.ar
    crit = float(stats.f.isf(alpha, part.l, moments.df))
    centre, se = _two_sls(part)
    grid1 = np.linspace(centre[0] - 50 * se[0], centre[0] + 50 * se[0], points)
    grid2 = np.linspace(centre[1] - 50 * se[1], centre[1] + 50 * se[1], points)
    step = grid2[1] - grid2[0]

    def profile(b1: float) -> float:
        values = ar_statistics(moments, np.column_stack([np.full(points, b1), grid2]))
        best = grid2[int(np.argmin(values))]
        found = optimize.minimize_scalar(lambda b2: float(ar_statistics(moments, np.array([[b1, b2]]))[0]),
                                         bounds=(best - step, best + step), method="bounded", options={"xatol": 1e-12 * max(1, abs(best))})
        return min(float(found.fun), float(values.min()))

    accepted = np.array([profile(b1) <= crit for b1 in grid1])
    return _accepted_set(grid1, accepted, lambda b1: profile(b1) - crit)


def _two_sls(part: Partialled) -> tuple[np.ndarray, np.ndarray]:
    """2SLS on the partialled columns and rough (iid) standard errors: where the grids are centred and how wide."""
    xhat = part.z @ part.first_stage[0]
    bread = np.linalg.inv(xhat.T @ xhat)
    beta = bread @ (xhat.T @ part.y)
    e = part.y - part.x @ beta
    return beta, np.sqrt(np.diagonal(bread) * float(e @ e) / len(e))


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of True."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def anderson_rubin(part: Partialled, alpha: float = 0.05) -> list[HypothesisTest]:
    names = part.data.endogenous_names
    stat, df = ar_statistic(part, np.zeros(part.p))
    p_value = f_sf(stat, part.l, df)
    null = f"{' and '.join(names)} {'has' if part.p == 1 else 'have'} no effect (β = 0), robust to weak instruments"
    if part.p > 1:
        joint = p_test("anderson_rubin", "joint", null, stat, p_value, "F", part.l, df, alpha, clusters=_clusters(part))
        return [joint, projected(part, alpha)]
    cs = ar_confidence_set(part, alpha)
    lo, hi = (cs.intervals[0][0], cs.intervals[-1][1]) if cs.intervals else (math.nan, math.nan)
    test = p_test("anderson_rubin", names[0], null, stat, p_value, "F", part.l, df, alpha, ci_low=lo, ci_high=hi, clusters=_clusters(part))
    return [_with_verdict(test, f"; {100 * (1 - alpha):g} % AR confidence set {cs}")]


def projected(part: Partialled, alpha: float = 0.05) -> HypothesisTest:
    """The first endogenous coefficient's AR test (the others profiled out) and its projection set (two regressors)."""
    name = part.data.endogenous_names[0]
    null = f"{name} has no effect (β = 0), robust to weak instruments (AR, the other endogenous coefficients projected out)"
    if part.p != 2:
        return not_applicable("anderson_rubin", f"{name}_projection", null, f"the projection set is computed for two endogenous regressors (the model has {part.p})")
    cs = projection_set(part, alpha)
    inside = any(lo <= 0 <= hi for lo, hi in cs.intervals)
    lo, hi = (cs.intervals[0][0], cs.intervals[-1][1]) if cs.intervals else (math.nan, math.nan)
    verdict = (f"{'Not rejected' if inside else 'Rejected'} at {alpha:g}: {null}; {100 * (1 - alpha):g} % AR projection set {cs}")
    return HypothesisTest("anderson_rubin", f"{name}_projection", null, distribution="F", df=part.l, df_denom=part.ar.df, ci_low=lo, ci_high=hi,
                          alpha=alpha, reject=not inside, clusters=_clusters(part), verdict=verdict)


def _with_verdict(test: HypothesisTest, more: str) -> HypothesisTest:
    return replace(test, verdict=test.verdict + more)


def _clusters(part: Partialled) -> int | None:
    data = part.data
    if data.kind != "CRV":
        return None
    return correction(data.n_obs, data.k, "CRV", data.fe_names, data.fe_codes, data.clusters)[2]


def overidentification(part: Partialled) -> HypothesisTest:
    data = part.data
    dof = part.l - part.p
    robust = data.kind != "iid"
    test, null = ("hansen_j", "Hansen's J") if robust else ("sargan", "Sargan's")
    null = "the excluded instruments are valid (uncorrelated with the error), given one subset identifies the model"
    if dof == 0:
        return not_applicable(test, "all", null, "the model is exactly identified (as many instruments as endogenous regressors)")
    q = np.column_stack([data.instruments, data.exogenous])
    u = data.resid
    if robust:
        stat = gmm_criterion(q, np.column_stack([data.endogenous, data.exogenous]), data.y, meat(q * u[:, None], data.kind, data.clusters))
    else:
        fitted = q @ np.linalg.solve(q.T @ q, q.T @ u)
        stat = data.n_obs * float(fitted @ fitted) / float(u @ u)
    return p_test(test, "all", null, stat, float(stats.chi2.sf(stat, dof)), "chi2", dof, clusters=_clusters(part))


def gmm_criterion(q: np.ndarray, x: np.ndarray, y: np.ndarray, s: np.ndarray) -> float:
    """min over β of (Qᵀ(y − Xβ))ᵀ S⁻¹ (Qᵀ(y − Xβ)): the efficient GMM's J with the scores' covariance S."""
    r, big_r = q.T @ y, q.T @ x
    s_inv = np.linalg.inv(s)
    beta = np.linalg.solve(big_r.T @ s_inv @ big_r, big_r.T @ s_inv @ r)
    g = r - big_r @ beta
    return float(g @ s_inv @ g)


def endogeneity(part: Partialled) -> list[HypothesisTest]:
    data = part.data
    null = f"{' and '.join(data.endogenous_names)} {'is' if part.p == 1 else 'are'} exogenous: OLS is consistent"
    _, resid, _ = first_stage_coefficients(part)
    # Wu–Hausman: y⊥ on X⊥ and the first-stage residuals; F of the residuals' coefficients, iid
    design = np.column_stack([part.x, resid])
    bread = np.linalg.inv(design.T @ design)
    beta = bread @ design.T @ part.y
    e = part.y - design @ beta
    k = part.p * 2 + data.exogenous.shape[1]
    factor, df, _ = correction(data.n_obs, k, "iid", data.fe_names, data.fe_codes, data.clusters)
    v = factor * float(e @ e) / (data.n_obs - 1) * bread[part.p:, part.p:]
    wu = _wald_f("endogeneity", "wu_hausman", null + " (Wu–Hausman, iid)", beta[part.p:], v, df)
    # C: difference-in-Hansen with the scores' covariance at the OLS residuals
    x_all = np.column_stack([data.endogenous, data.exogenous])
    ols = np.linalg.solve(x_all.T @ x_all, x_all.T @ data.y)
    u = data.y - x_all @ ols
    q = np.column_stack([data.instruments, data.exogenous])
    q_all = np.column_stack([q, data.endogenous])
    if data.kind == "iid":
        s_all = float(u @ u) / data.n_obs * (q_all.T @ q_all)
    else:
        s_all = meat(q_all * u[:, None], data.kind, data.clusters)
    small = q.shape[1]
    c = gmm_criterion(q_all, x_all, data.y, s_all) - gmm_criterion(q, x_all, data.y, s_all[:small, :small])
    kind = {"iid": "iid", "hetero": "heteroskedasticity-robust", "CRV": "cluster-robust"}[data.kind]
    c_test = p_test("endogeneity", "c_statistic", null + f" (C statistic, difference-in-Sargan/Hansen, {kind})", c,
                    float(stats.chi2.sf(c, part.p)), "chi2", part.p, clusters=_clusters(part))
    return [wu, c_test]


def diagnostics(data: Instrumented, alpha: float = 0.05) -> list[HypothesisTest]:
    """Every row of the block, in the order ivreg2 prints them."""
    part = partial_out(data)
    return [*first_stage_f(part), kp_lm(part), kp_wald_f(part), *cragg_donald_f(part), effective_f(part, alpha),
            *anderson_rubin(part, alpha), overidentification(part), *endogeneity(part)]
