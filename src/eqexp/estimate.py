"""One regression: sample hygiene, the pyfixest call, and a tidy result.

Rows with a missing variable and singleton fixed-effect groups are removed here, before
pyfixest sees the data, so both counts are known and reported (pyfixest only warns).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyfixest as pf
from pyfixest.core.detect_singletons import detect_singletons

from eqexp.panel import Step
from eqexp.spec import SpecError, VcovSpec

# Demeaning converges to this tolerance; pyfixest's default (1e-8) leaves ~1e-8 relative
# error in off-diagonal covariances, too loose to agree with explicit-dummy OLS.
FIXEF_TOL = 1e-12
DEMEANER = pf.MapDemeaner(fixef_tol=FIXEF_TOL)
TIDY_COLUMNS = ["term", "estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]


@dataclass(frozen=True)
class Fit:
    """Everything a table, a test or MLflow needs from one estimated model."""

    model: str  # column id, e.g. "(2)"
    sample: str  # sample or group label
    outcome: str
    regressors: list[str]
    fixed_effects: list[str]
    tidy: pd.DataFrame  # TIDY_COLUMNS
    vcov: np.ndarray  # covariance of the regressors, in `regressors` order
    n_obs: int
    r2: float
    r2_within: float
    df_t: int  # degrees of freedom of the t tails (G-1 when clustered)
    vcov_label: str
    steps: list[Step] = field(default_factory=list)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)  # regressor min/max in the estimation sample

    def coef(self, term: str) -> float:
        return float(self.tidy.set_index("term").at[term, "estimate"])


def drop_singletons(df: pd.DataFrame, fixed_effects: list[str]) -> pd.DataFrame:
    """Iteratively remove observations alone in a fixed-effect group (reghdfe's default)."""
    if not fixed_effects:
        return df
    codes = np.column_stack([pd.factorize(df[fe])[0] for fe in fixed_effects]).astype(np.uint32)
    return df.loc[~detect_singletons(codes)]


def estimation_sample(df: pd.DataFrame, variables: list[str], fixed_effects: list[str]) -> tuple[pd.DataFrame, list[Step]]:
    used = list(dict.fromkeys(variables + fixed_effects))
    complete = df.dropna(subset=used)
    steps = [Step("missing values", len(df), len(complete), reason=f"missing in one of {', '.join(used)}")]
    kept = drop_singletons(complete, fixed_effects)
    steps.append(Step("singletons", len(complete), len(kept), reason=f"alone in a {' or '.join(fixed_effects)} group"))
    return kept, steps


def _pyfixest_vcov(spec: VcovSpec) -> str | dict:
    if spec.type.startswith("CRV"):
        return {spec.type: "+".join(spec.cluster)}
    return spec.type


def fit(
    df: pd.DataFrame,
    outcome: str,
    regressors: list[str],
    fixed_effects: list[str],
    vcov: VcovSpec,
    model: str = "(1)",
    sample: str = "All",
) -> Fit:
    """Estimate `outcome ~ regressors | fixed_effects` and return a tidy `Fit`."""
    cluster = list(vcov.cluster) if vcov.type.startswith("CRV") else []
    data, steps = estimation_sample(df, [outcome, *regressors, *cluster], fixed_effects)
    if data.empty:
        raise SpecError(
            f"Model {model} on sample '{sample}' has no observations left "
            f"({'; '.join(f'{s.step}: -{s.dropped}' for s in steps)}). Check the sample filter, the group definitions and the lags."
        )
    formula = f"{outcome} ~ {' + '.join(regressors)}" + (f" | {' + '.join(fixed_effects)}" if fixed_effects else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pf.feols(formula, data=data, vcov=_pyfixest_vcov(vcov), fixef_rm="none", demeaner=DEMEANER)
    kept = [str(name) for name in result._coefnames]
    dropped = [r for r in regressors if r not in kept]
    if dropped:
        raise SpecError(
            f"Model {model} on sample '{sample}': {', '.join(dropped)} is collinear with the other regressors "
            f"or the fixed effects ({' + '.join(fixed_effects)}) and cannot be estimated. Remove it from the model."
        )
    tidy = result.tidy().reset_index()
    tidy.columns = TIDY_COLUMNS
    return Fit(
        model=model,
        sample=sample,
        outcome=outcome,
        regressors=kept,
        fixed_effects=list(fixed_effects),
        tidy=tidy,
        vcov=np.asarray(result._vcov),
        n_obs=int(result._N),
        r2=float(result._r2),
        r2_within=float(result._r2_within) if fixed_effects else float("nan"),
        df_t=int(result._df_t),
        vcov_label=vcov.label,
        steps=steps,
        ranges={r: (float(data[r].min()), float(data[r].max())) for r in kept},
    )


def coefficients_frame(fits: list[Fit]) -> pd.DataFrame:
    """The results contract: one row per model and term."""
    rows = [
        fit.tidy.assign(
            model=fit.model,
            sample=fit.sample,
            outcome=fit.outcome,
            n_obs=fit.n_obs,
            r2=fit.r2,
            r2_within=fit.r2_within,
            vcov=fit.vcov_label,
        )
        for fit in fits
    ]
    columns = ["model", "sample", "outcome", *TIDY_COLUMNS, "n_obs", "r2", "r2_within", "vcov"]
    return pd.concat(rows, ignore_index=True)[columns]
