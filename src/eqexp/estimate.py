"""Regressions: the estimation sample, the absorbed columns it shares with other models, and
a tidy result.

Rows with a missing variable and singleton fixed-effect groups are removed before any
estimation, so both counts are known and reported (pyfixest only warns).

The fast path: a `Workspace` holds one prepared panel. Every model's estimation sample is a
set of its rows; the columns a model needs are absorbed (`eqexp.absorb`) once per sample
and kept, so models that share a sample (the columns of Table 4, the three mediation
equations, the groups behind a group-difference test) share the work, and a worker's
later jobs on the same prepared data reuse it (`eqexp.cache`). Least squares and the
covariance then cost a few small matrix products (`eqexp.ols`). A model without fixed
effects has its intercept absorbed (a one-level effect). CRV3 goes to `pf.feols`, which
is also the reference the tests hold the fast path to.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from eqexp.absorb import FIXEF_TOL, Absorber, AbsorbError, compact, factorize
from eqexp.iv import Instrumented, InstrumentError, two_stage
from eqexp.ols import Clusters, CollinearError, LeastSquares, least_squares
from eqexp.panel import Step
from eqexp.spec import SpecError, VcovSpec
from eqexp.terms import interaction_parts

FAST_VCOV = {"CRV1": "CRV", "hetero": "hetero", "iid": "iid"}
INTERCEPT = "(intercept)"  # a model without fixed effects has a constant: absorbed as a one-level effect


@dataclass(frozen=True)
class Fit:
    """Everything a table, a test or MLflow needs from one estimated model."""

    model: str  # column id, e.g. "(2)"
    sample: str  # sample or group label
    outcome: str
    regressors: list[str]
    fixed_effects: list[str]
    tidy: pd.DataFrame  # coefficients.TERM_COLUMNS
    vcov: np.ndarray  # covariance of the regressors, in `regressors` order
    n_obs: int
    r2: float
    r2_within: float
    df_t: int  # degrees of freedom of the t tails (G-1 when clustered)
    vcov_label: str
    steps: list[Step] = field(default_factory=list)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # regressor min/max in the estimation sample
    iv: Instrumented | None = None  # 2SLS: the first stages and what the IV diagnostics read

    def coef(self, term: str) -> float:
        return float(self.tidy.set_index("term").at[term, "estimate"])


# --- estimation samples ----------------------------------------------------------------------


def singletons(codes: np.ndarray) -> np.ndarray:
    """Rows alone in a fixed-effect group, found iteratively (reghdfe's default)."""
    from pyfixest.core.detect_singletons import detect_singletons

    if codes.shape[1] == 0 or len(codes) == 0:
        return np.zeros(len(codes), bool)
    return detect_singletons(codes.astype(np.uint32))


def drop_singletons(df: pd.DataFrame, fixed_effects: list[str]) -> pd.DataFrame:
    """Iteratively remove observations alone in a fixed-effect group (reghdfe's default)."""
    return df.iloc[Workspace(df).sample(fixed_effects, fixed_effects).positions]


def estimation_sample(df: pd.DataFrame, variables: list[str], fixed_effects: list[str]) -> tuple[pd.DataFrame, list[Step]]:
    """The rows a model of `variables` can use, and the steps that removed the others."""
    sample = Workspace(df).sample(variables, fixed_effects)
    return df.iloc[sample.positions], sample.steps


# --- absorbed columns, shared -------------------------------------------------------------------


class BlockCache:
    """Absorbed columns by (data, rows, fixed effects, column), least recently used out first."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.columns: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(self, key: tuple) -> np.ndarray | None:
        column = self.columns.get(key)
        if column is not None:
            self.columns.move_to_end(key)
        return column

    def put(self, key: tuple, column: np.ndarray) -> None:
        self.columns[key] = column
        self.bytes += column.nbytes
        while self.bytes > self.max_bytes and len(self.columns) > 1:
            self.bytes -= self.columns.popitem(last=False)[1].nbytes

    def keep_only(self, data_key: str) -> None:
        """Forget the columns of every other prepared panel (a job moved on to this one)."""
        for key in [k for k in self.columns if k[0] != data_key]:
            self.bytes -= self.columns.pop(key).nbytes


@dataclass(frozen=True, eq=False)
class Sample:
    """The rows one model is estimated on (positions in the workspace's panel), fixed effects coded."""

    key: tuple
    positions: np.ndarray
    steps: list[Step]
    fixed_effects: tuple[str, ...]
    fe_codes: np.ndarray  # (n, n_fe), 0..L-1 per effect

    @property
    def n_obs(self) -> int:
        return len(self.positions)


class Workspace:
    """One prepared panel and the samples and absorbed columns of the models fitted on it.

    Rows are selected by position, never by copying the panel; a column is converted to
    numpy once. `data_key` names the panel's content (data fingerprint and preparation):
    with it and a process's cache (`eqexp.cache.ProcessCache`, `shared`) the absorbed columns
    and resampling moments outlive the job there, without them they live as long as the workspace.
    """

    def __init__(self, df: pd.DataFrame, data_key: str | None = None, shared: Any = None):
        self.df = df
        self.data_key = data_key if data_key is not None and shared is not None else f"workspace-{id(self)}"
        self.shared = shared
        self.cache = shared.blocks if shared is not None else BlockCache(2**62)
        self._arrays: dict[str, np.ndarray] = {}
        self._codes: dict[str, np.ndarray] = {}
        self._present: dict[str, np.ndarray] = {}
        self._queries: dict[str, np.ndarray] = {}
        self._samples: dict[tuple, Sample] = {}
        self._absorbers: dict[tuple, Absorber] = {}

    def array(self, column: str) -> np.ndarray:
        if column not in self._arrays:
            self._arrays[column] = self.df[column].to_numpy()
        return self._arrays[column]

    def codes(self, column: str) -> np.ndarray:
        """Integer codes of a column's groups; `a^b`: of the groups of a × b."""
        if column not in self._codes:
            first, *others = interaction_parts(column)
            codes = factorize(self.array(first))
            for other in others:
                codes = factorize(codes * (int(self.codes(other).max()) + 1) + self.codes(other))
            self._codes[column] = codes
        return self._codes[column]

    def present(self, column: str) -> np.ndarray:
        if column not in self._present:
            self._present[column] = np.logical_and.reduce([self.df[c].notna().to_numpy() for c in interaction_parts(column)])
        return self._present[column]

    def rows(self, query: str | None) -> np.ndarray:
        """Positions of the rows a pandas query selects (all rows for None)."""
        if query not in self._queries:
            self._queries[query] = np.arange(len(self.df)) if query is None else np.flatnonzero(self.df.eval(query).to_numpy(bool))
        return self._queries[query]

    def values(self, sample: Sample, column: str) -> np.ndarray:
        return self.array(column)[sample.positions]

    def frame(self, sample: Sample, columns: list[str]) -> pd.DataFrame:
        """The sample's rows, only the columns asked for."""
        return pd.DataFrame({c: self.values(sample, c) for c in dict.fromkeys(columns)})

    def sample_codes(self, positions: np.ndarray, columns: list[str]) -> np.ndarray:
        return np.column_stack([compact(self.codes(c)[positions]) for c in columns]) if columns else np.zeros((len(positions), 0), np.int64)

    def sample(self, variables: list[str], fixed_effects: list[str], query: str | None = None) -> Sample:
        """The rows (of `query`) where a model of `variables` can be estimated: complete, no singletons."""
        key = (query, tuple(dict.fromkeys(variables)), tuple(fixed_effects))
        if key not in self._samples:
            self._samples[key] = self._sample(variables, fixed_effects, query)
        return self._samples[key]

    def _sample(self, variables: list[str], fixed_effects: list[str], query: str | None) -> Sample:
        rows = self.rows(query)
        used = list(dict.fromkeys([*variables, *fixed_effects]))
        gaps = [self.present(c)[rows] for c in used if not self.present(c).all()]
        complete = rows[np.logical_and.reduce(gaps)] if gaps else rows
        steps = [Step("missing values", len(rows), len(complete), reason=f"missing in one of {', '.join(used)}")]
        codes = self.sample_codes(complete, fixed_effects)
        alone = singletons(codes)
        kept = complete[~alone]
        if alone.any():  # some levels are gone: renumber
            codes = np.column_stack([compact(c) for c in codes[~alone].T])
        steps.append(Step("singletons", len(complete), len(kept), reason=f"alone in a {' or '.join(fixed_effects)} group"))
        digest = hashlib.blake2b(kept.astype(np.int64).tobytes(), digest_size=16).hexdigest()
        effects = tuple(fixed_effects)
        if not effects:  # the intercept is absorbed as a one-level effect: x - mean(x)
            effects, codes = (INTERCEPT,), np.zeros((len(kept), 1), np.int64)
        return Sample((self.data_key, digest, effects), kept, steps, effects, codes)

    def absorb(self, sample: Sample, block: np.ndarray) -> np.ndarray:
        """Any columns of values on the sample's rows (n × k), fixed effects absorbed; not cached."""
        if sample.key not in self._absorbers:
            self._absorbers[sample.key] = Absorber(list(sample.fe_codes.T))
        return self._absorbers[sample.key].demean(block)

    def absorbed(self, sample: Sample, columns: list[str]) -> np.ndarray:
        """The columns with every fixed effect of the sample absorbed (n × k, column order kept)."""
        found = {c: self.cache.get((*sample.key, c)) for c in dict.fromkeys(columns)}
        missing = [c for c, column in found.items() if column is None]
        if missing:
            block = self.absorb(sample, np.column_stack([self.values(sample, c).astype(np.float64) for c in missing]))
            for j, c in enumerate(missing):
                found[c] = np.ascontiguousarray(block[:, j])
                self.cache.put((*sample.key, c), found[c])
        return np.column_stack([found[c] for c in columns])


# --- one model --------------------------------------------------------------------------------------


def fast_path_serves(vcov: VcovSpec) -> bool:
    return vcov.type in FAST_VCOV


def _clusters(workspace: Workspace, sample: Sample, vcov: VcovSpec) -> Clusters | None:
    return Clusters(tuple(vcov.cluster), workspace.sample_codes(sample.positions, list(vcov.cluster))) if vcov.type.startswith("CRV") else None


def least_squares_of(workspace: Workspace, sample: Sample, outcome: str, regressors: list[str], vcov: VcovSpec,
                     derived: dict[str, np.ndarray] | None = None) -> LeastSquares:
    """OLS of a sample's outcome on panel columns (`regressors`) and on `derived` ones (values on the
    sample's rows, e.g. the segments of an interrupted regression): those come first, and are not cached."""
    block = workspace.absorbed(sample, [outcome, *regressors])
    names = list(regressors)
    if derived:
        block = np.column_stack([block[:, :1], workspace.absorb(sample, np.column_stack(list(derived.values()))), block[:, 1:]])
        names = [*derived, *names]
    return least_squares(block[:, 1:], block[:, 0], workspace.values(sample, outcome).astype(np.float64), names,
                         FAST_VCOV[vcov.type], sample.fixed_effects, sample.fe_codes, _clusters(workspace, sample, vcov))


def two_stage_of(workspace: Workspace, sample: Sample, outcome: str, regressors: list[str], endogenous: list[str],
                 instruments: list[str], vcov: VcovSpec) -> tuple[LeastSquares, Instrumented]:
    """2SLS of a sample's outcome on `regressors`, `endogenous` of them instrumented by `instruments` (absorbed once, cached)."""
    block = workspace.absorbed(sample, [outcome, *regressors, *instruments])
    k = len(regressors)
    raw = np.column_stack([workspace.values(sample, e).astype(np.float64) for e in endogenous])
    return two_stage(block[:, 1:k + 1], block[:, 0], workspace.values(sample, outcome).astype(np.float64), regressors, endogenous,
                     block[:, k + 1:], instruments, raw, FAST_VCOV[vcov.type], sample.fixed_effects, sample.fe_codes,
                     _clusters(workspace, sample, vcov))


def _crv3(workspace: Workspace, sample: Sample, outcome: str, regressors: list[str], fixed_effects: list[str],
          vcov: VcovSpec) -> LeastSquares:
    """CRV3 (leave-one-cluster-out jackknife) from `pf.feols`, which re-estimates the model without each cluster.

    Everything but the covariance matrix comes from its public accessors and this sample; the
    matrix itself pyfixest keeps in `_vcov` only.
    """
    import pyfixest as pf

    frame = workspace.frame(sample, [outcome, *regressors, *fixed_effects])
    clusters = workspace.sample_codes(sample.positions, list(vcov.cluster))
    frame = frame.assign(**{f"cluster{d}": clusters[:, d] for d in range(clusters.shape[1])})
    formula = f"{outcome} ~ {' + '.join(regressors)}" + (f" | {' + '.join(fixed_effects)}" if fixed_effects else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pf.feols(formula, data=frame, vcov={"CRV3": "+".join(f"cluster{d}" for d in range(clusters.shape[1]))},
                          fixef_rm="none", demeaner=pf.MapDemeaner(fixef_tol=FIXEF_TOL))
    names = [str(n) for n in result.coef().index]
    dropped = [r for r in regressors if r not in names]
    if dropped:
        raise CollinearError(dropped)
    tidy, resid = result.tidy(), result.resid()
    y, within = frame[outcome].to_numpy(np.float64), workspace.absorbed(sample, [outcome])[:, 0]
    return LeastSquares(
        names=tuple(names), coef=tidy["Estimate"].to_numpy(), vcov=np.asarray(result._vcov), se=tidy["Std. Error"].to_numpy(),
        statistic=tidy["t value"].to_numpy(), p_value=tidy["Pr(>|t|)"].to_numpy(), conf_low=tidy["2.5%"].to_numpy(),
        conf_high=tidy["97.5%"].to_numpy(), n_obs=len(resid), df_t=int(clusters.max(axis=0).min()), n_clusters=None,
        r2=1 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum()), r2_within=1 - float(resid @ resid) / float(within @ within),
    )


def _check_finite(result: LeastSquares, values: dict[str, np.ndarray], what: str) -> None:
    """No estimate or standard error reaches a table as NaN or inf: a named error says which and why."""
    bad = [n for n, b, s in zip(result.names, result.coef, result.se) if not (np.isfinite(b) and np.isfinite(s))]
    if not bad:
        return
    largest = {n: float(np.abs(v).max()) for n, v in values.items() if len(v)}
    huge = [f"{n} (up to {m:.3g})" for n, m in largest.items() if m > 1e100]
    why = (f"the values of {', '.join(huge)} are so large that their products overflow: rescale them (divide by a power "
           "of 10, or take logs)" if huge else
           f"{result.n_obs} observations, {result.df_t} residual degrees of freedom"
           + (f", {result.n_clusters} cluster(s)" if result.n_clusters is not None else "")
           + ": use more observations or clusters, or fewer regressors")
    raise SpecError(f"{what}: no finite estimate or standard error for {', '.join(bad)}: {why}.")


def fit(
    df: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    fixed_effects: list[str],
    vcov: VcovSpec,
    model: str = "(1)",
    sample: str = "All",
    workspace: Workspace | None = None,
    query: str | None = None,
    endogenous: list[str] | None = None,
    instruments: list[str] | None = None,
) -> Fit:
    """Estimate `outcome ~ regressors | fixed_effects` on the rows of `df` that `query` selects; return a tidy `Fit`.
    With `instruments`: 2SLS, the `endogenous` regressors instrumented by them and the other regressors.

    Pass the job's `workspace` (whose panel `df` is) to share samples and absorbed columns.
    """
    workspace = workspace if workspace is not None and workspace.df is df else Workspace(df)
    cluster = list(vcov.cluster) if vcov.type.startswith("CRV") else []
    instruments = list(instruments or [])
    rows = workspace.sample([outcome, *regressors, *instruments, *cluster], fixed_effects, query)
    if rows.n_obs == 0:
        raise SpecError(
            f"Model {model} on sample '{sample}' has no observations left "
            f"({'; '.join(f'{s.step}: -{s.dropped}' for s in rows.steps)}). Check the sample filter, the group definitions and the lags."
        )
    instrumented = None
    try:
        if instruments:
            result, instrumented = two_stage_of(workspace, rows, outcome, regressors, list(endogenous or []), instruments, vcov)
        elif fast_path_serves(vcov):
            result = least_squares_of(workspace, rows, outcome, regressors, vcov)
        else:
            result = _crv3(workspace, rows, outcome, regressors, fixed_effects, vcov)
    except AbsorbError as err:
        raise SpecError(f"Model {model} on sample '{sample}': absorbing the fixed effects ({' + '.join(fixed_effects)}) failed: "
                        f"{err}. Check for fixed effects that barely overlap, or simplify them.") from None
    except CollinearError as err:
        raise SpecError(
            f"Model {model} on sample '{sample}': {', '.join(err.names)} is collinear with the other regressors "
            f"or the fixed effects ({' + '.join(fixed_effects)}) and cannot be estimated. Remove it from the model."
        ) from None
    except InstrumentError as err:
        what = (f"is absorbed by the fixed effects ({' + '.join(fixed_effects)}): it does not vary within them" if err.absorbed
                else "is collinear with the other instruments and the exogenous regressors")
        raise SpecError(f"Model {model} on sample '{sample}': the instrument {', '.join(err.names)} {what}, so it identifies nothing. "
                        "Remove it from model.instruments or use an instrument that varies within the fixed effects.") from None
    values = {r: workspace.values(rows, r).astype(np.float64) for r in result.names if r in df}
    _check_finite(result, values, f"Model {model} on sample '{sample}'")
    tidy = pd.DataFrame({"term": list(result.names), "estimate": result.coef, "std_error": result.se, "statistic": result.statistic,
                         "p_value": result.p_value, "conf_low": result.conf_low, "conf_high": result.conf_high})
    return Fit(
        model=model, sample=sample, outcome=outcome, regressors=list(result.names), fixed_effects=list(fixed_effects),
        tidy=tidy, vcov=result.vcov, n_obs=result.n_obs, r2=result.r2, r2_within=result.r2_within if fixed_effects else float("nan"), df_t=result.df_t,
        vcov_label=vcov.label, steps=rows.steps, ranges={r: (float(v.min()), float(v.max())) for r, v in values.items()},
        iv=instrumented,
    )
