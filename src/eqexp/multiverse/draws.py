"""In each job of a multiverse: its models' estimates under the null, on resampling draws
that every job of the multiverse shares.

The joint test (Simonsohn, Simmons & Nelson 2020) asks how the whole curve would look if the
treatment had no effect. Each spec imposes the null on its own data, y* = y − Σ b̂ₜ·Tₜ over
its treatment terms Tₜ (the treatment and its square, lagged as the spec lags them), and is
re-estimated on firm-cluster resampling draws of y*. The dependence between specs (they
share firms) is kept by drawing the same firms in draw b for every spec: a firm's weight is
a Poisson(1) count that depends only on the seed, the draw and the firm's id (a Poisson
bootstrap, e.g. Chamandy et al. 2012), so jobs in different processes, on differently
trimmed or built samples, agree on it without talking to each other.

Each re-estimate is exact, from per-firm moments (`inference.firm_moments`) aggregated over
the draws once per estimation sample: specs on the same rows (a control set, a vcov axis)
then cost one small solve per draw. eqexp's launcher runs such specs one after another in
the same worker (`eqexp.sweep.workers.chains`).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from eqexp.estimate import Fit, Sample, Workspace
from eqexp.inference.firm_moments import CHUNK_ENTRIES, FirmMoments
from eqexp.models import Plan
from eqexp.multiverse import curve_term
from eqexp.spec import Spec, SpecError
from eqexp.terms import base_variable

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
# P(Poisson(1) ≤ k), k = 0..19: a uniform u becomes the count k with cdf[k-1] ≤ u < cdf[k]
_POISSON_CDF = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(20)])



def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's output function (Steele, Lea & Flood 2014), on uint64 arrays."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _counts(hashes: np.ndarray, seed: int, draws: int) -> np.ndarray:
    """(draws, firms) Poisson(1) counts: draw b of firm g is the b-th output of a splitmix64
    stream that starts at the firm's id hash plus the seed's."""
    start = hashes + _mix(np.array([seed], dtype=np.uint64))
    counts = np.empty((draws, len(hashes)), dtype=np.uint8)
    step = max(1, 2**22 // max(len(hashes), 1))
    for first in range(0, draws, step):
        b = np.arange(first + 1, min(first + step, draws) + 1, dtype=np.uint64)[:, None]
        uniform = (_mix(start[None, :] + b * _GOLDEN) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        counts[first : first + len(b)] = np.searchsorted(_POISSON_CDF, uniform, side="right")
    return counts


def firm_weights(ids: np.ndarray, seed: int, draws: int, kept: dict | None = None) -> np.ndarray:
    """(draws, len(ids)) resampling counts of these firms: a function of (seed, draw, id) alone.
    `kept` (a process cache's `weights`): the sorted id hashes and counts of the firms seen so far."""
    hashes = pd.util.hash_array(np.asarray(ids))
    kept = {} if kept is None else kept
    known, counts = kept.get((seed, draws), (np.zeros(0, np.uint64), np.zeros((draws, 0), np.uint8)))
    new = np.setdiff1d(hashes, known)
    if len(new):  # a worker computes each firm's counts once per seed and number of draws
        known = np.concatenate([known, new])
        counts = np.concatenate([counts, _counts(new, seed, draws)], axis=1)
        order = np.argsort(known)
        known, counts = known[order], counts[:, order]
        kept[(seed, draws)] = (known, counts)
    return counts[:, np.searchsorted(known, hashes)]


def treatment_terms(spec: Spec, fit: Fit) -> list[str]:
    return [r for r in fit.regressors if base_variable(r) == spec.model.treatment]


def drawn_moments(workspace: Workspace, sample: Sample, outcome: str, regressors: list[str], unit: str,
                  other_fe: list[str], seed: int, draws: int) -> tuple[FirmMoments, np.ndarray, bool]:
    """The per-firm moments of `outcome` and (at least) `regressors` on `sample`, aggregated with
    each shared draw's firm weights: (draws, p, p), and whether an earlier spec's were reused.
    Kept per worker for the specs that follow."""
    key = (sample.key, outcome, seed, draws)
    shared = workspace.shared  # the process's cache: every spec on the same rows solves its draws from them
    cached = shared.kept("moments", key) if shared is not None else None
    if cached is not None and set(regressors) <= set(cached[0].x):
        return *cached, True
    columns = list(dict.fromkeys([*(cached[0].x if cached else []), *regressors]))
    frame = workspace.frame(sample, [outcome, *columns, unit, *other_fe])
    try:
        moments = FirmMoments.from_frame(frame, outcome, columns, unit, other_fe)
    except ValueError as err:
        raise SpecError(f"The joint test's per-firm moments cannot be built: {err}. Use fixed effects with few levels "
                        "besides the unit's, or multiverse.draws=0.") from None
    weights = firm_weights(moments.firms, seed, draws, shared.weights if shared is not None else None)
    step = max(1, CHUNK_ENTRIES // moments.n_firms)
    aggregated = np.concatenate([moments.aggregate(weights[i : i + step].astype(np.float64)) for i in range(0, draws, step)])
    if shared is not None:  # kept without the per-firm entries (firms × p²): a later spec only solves
        shared.keep("moments", key, (moments.without_entries(), aggregated))
    return moments, aggregated, False


def null_estimates(workspace: Workspace, spec: Spec, plan: Plan, fit: Fit) -> tuple[np.ndarray, bool]:
    """(draws, regressors) estimates of `fit`'s model on y* = y − Σ b̂ₜ·Tₜ, one row per shared
    draw, and whether the sample's moments came from an earlier spec.

    Least squares is linear in y: on y*, a draw's estimates are those on y minus b̂ₜ for each
    treatment term (and unchanged for the controls), so y's moments serve every spec on the rows."""
    unit, mv = spec.data.id, spec.multiverse
    cluster = list(spec.vcov.cluster) if spec.vcov.type.startswith("CRV") else []
    sample = workspace.sample([plan.outcome, *plan.regressors, *cluster], fit.fixed_effects, plan.query)
    other_fe = [fe for fe in fit.fixed_effects if fe != unit]
    moments, aggregated, reused = drawn_moments(workspace, sample, plan.outcome, fit.regressors, unit, other_fe, mv.seed, mv.draws)
    estimates = moments.solve(aggregated, x=fit.regressors)[:, 0, :]
    imposed = np.array([fit.coef(t) if t in treatment_terms(spec, fit) else 0.0 for t in fit.regressors])
    return estimates - imposed, reused


def null_draws(workspace: Workspace, spec: Spec, planned: list[Plan], fits: list[Fit]) -> list[dict[str, Any]]:
    """Per model: the curve's term, its estimate and SE, and its estimates on the shared null draws."""
    records = []
    for plan, fit in zip(planned, fits):
        start = time.perf_counter()
        term = curve_term(fit.regressors, spec.model.treatment, spec.multiverse.term)
        if term is None:
            raise SpecError(f"Model {fit.model} has no term of the treatment '{spec.model.treatment}' for multiverse.term={spec.multiverse.term}.")
        estimates, reused = null_estimates(workspace, spec, plan, fit)
        draws = estimates[:, fit.regressors.index(term)]
        row = fit.tidy.set_index("term").loc[term]
        records.append({"model": fit.model, "term": term, "estimate": float(row.estimate), "se": float(row.std_error),
                        "df_t": fit.df_t, "seed": spec.multiverse.seed, "moments_shared": reused, "draws": draws.tolist()})
        shared = ", the sample's moments shared with an earlier spec" if reused else ""
        print(f"[eqexp] multiverse: {len(draws)} draws under the null for {fit.model} in {time.perf_counter() - start:.1f} s{shared}", flush=True)
    return records
