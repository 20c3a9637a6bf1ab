"""Two-stage least squares on absorbed columns, with fixest's conventions.

The fixed effects are absorbed once from y, the regressors X and the excluded instruments Z
(eqexp.absorb); everything below is on those within-transformed columns:

    Q = [Z̃, W̃]            the instruments: the excluded ones and the exogenous regressors W
    X̂ = Q (QᵀQ)⁻¹ QᵀX̃     the first stages (W's columns are their own fit)
    β = (X̂ᵀX̂)⁻¹ X̂ᵀỹ,      u = ỹ − X̃β

and V(β) is the sandwich of the scores X̂·u with bread (X̂ᵀX̂)⁻¹ and the small-sample factor
of a model with X's regressors, as fixest's `feols(y ~ w | fe | x ~ z)` computes it. The
first stages are ordinary fits of each endogenous regressor on Q with the model's vcov.
`Instrumented` keeps the absorbed columns the diagnostics (eqexp.inference.iv_tests) read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from eqexp.ols import COLLINEARITY_TOL, Clusters, CollinearError, LeastSquares, with_inference


class InstrumentError(ValueError):
    """An excluded instrument the fixed effects absorb, or one collinear with the other instruments."""

    def __init__(self, names: list[str], absorbed: bool):
        super().__init__(", ".join(names))
        self.names, self.absorbed = names, absorbed


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Instrumented:
    """One IV model's absorbed columns, its first stages and its 2SLS residuals."""

    y: np.ndarray
    endogenous: np.ndarray  # n × p
    exogenous: np.ndarray  # n × k_w
    instruments: np.ndarray  # n × l, the excluded instruments
    endogenous_names: tuple[str, ...]
    exogenous_names: tuple[str, ...]
    instrument_names: tuple[str, ...]
    first: tuple[LeastSquares, ...]  # of each endogenous regressor on (instruments, exogenous)
    resid: np.ndarray  # u = ỹ − X̃β
    kind: str  # iid | hetero | CRV
    fe_names: tuple[str, ...]
    fe_codes: np.ndarray
    clusters: Clusters | None

    @property
    def n_obs(self) -> int:
        return len(self.y)

    @property
    def k(self) -> int:
        """Regressors of the second stage."""
        return self.endogenous.shape[1] + self.exogenous.shape[1]

    def first_stage_names(self) -> list[str]:
        return [*self.instrument_names, *self.exogenous_names]


def check_instruments(qtq: np.ndarray, n_instruments: int, names: Sequence[str]) -> None:
    """Raise `InstrumentError` for an excluded instrument the fixed effects absorb, or collinear with the other
    instruments and the exogenous regressors; `qtq` is QᵀQ of Q = [Z̃, W̃] (the excluded instruments first)."""
    from pyfixest.core.collinear import find_collinear_variables

    diagonal = np.diagonal(qtq)[:n_instruments]
    absorbed = [n for n, ss in zip(names, diagonal) if ss <= COLLINEARITY_TOL**2 * max(1.0, float(np.diagonal(qtq).max()))]
    if absorbed:
        raise InstrumentError(absorbed, absorbed=True)
    order = [*range(n_instruments, len(qtq)), *range(n_instruments)]  # the exogenous regressors first: an instrument collinear with them is named
    excluded, _, _ = find_collinear_variables(np.ascontiguousarray(qtq[np.ix_(order, order)]), COLLINEARITY_TOL)
    flagged = np.asarray(excluded).ravel().astype(bool)[len(qtq) - n_instruments:]
    if flagged.any():
        raise InstrumentError([n for n, bad in zip(names, flagged) if bad], absorbed=False)


def two_stage(xd: np.ndarray, yd: np.ndarray, y: np.ndarray, names: Sequence[str], endogenous: Sequence[str],
              zd: np.ndarray, instrument_names: Sequence[str], raw_endogenous: np.ndarray, kind: str,
              fe_names: Sequence[str], fe_codes: np.ndarray, clusters: Clusters | None = None,
              alpha: float = 0.05) -> tuple[LeastSquares, Instrumented]:
    """2SLS of ỹ on X̃ (`names`, of which `endogenous` are instrumented by Z̃ and the others); `raw_endogenous`
    (the endogenous regressors' own values) gives the first stages' total R²."""
    endo = [names.index(e) for e in endogenous]
    exo = [j for j in range(len(names)) if j not in endo]
    wd = xd[:, exo]
    q = np.column_stack([zd, wd])
    qtq = q.T @ q
    check_instruments(qtq, zd.shape[1], list(instrument_names))
    q_bread = np.linalg.inv(qtq)
    pi = q_bread @ (q.T @ xd[:, endo])  # every first stage in one pass: they share Q
    q_names = [*instrument_names, *(names[j] for j in exo)]
    fitted = xd.copy()
    first = []
    for i, j in enumerate(endo):
        fitted[:, j] = q @ pi[:, i]
        first.append(with_inference(q, pi[:, i], xd[:, j] - fitted[:, j], q_bread, xd[:, j], raw_endogenous[:, i], q_names, kind,
                                    fe_names, fe_codes, clusters, alpha))
    try:
        bread = np.linalg.inv(fitted.T @ fitted)
    except np.linalg.LinAlgError:
        raise CollinearError(list(endogenous)) from None
    beta = bread @ (fitted.T @ yd)
    resid = yd - xd @ beta
    second = with_inference(fitted, beta, resid, bread, yd, y, names, kind, fe_names, fe_codes, clusters, alpha)
    data = Instrumented(yd, xd[:, endo], wd, zd, tuple(endogenous), tuple(names[j] for j in exo), tuple(instrument_names),
                        tuple(first), resid, kind, tuple(fe_names), fe_codes, clusters)
    return second, data
