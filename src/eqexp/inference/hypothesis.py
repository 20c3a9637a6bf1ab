"""One shape for every test eqexp reports, after linearmodels' `shared/hypotheses.py`.

A `HypothesisTest` holds what a reader needs to judge one null hypothesis: the statistic, its
reference distribution and degrees of freedom, the p-value, the decision at `alpha` and a
verdict in words; where the test is about one number (a slope, a difference, a·b), that number
with its standard error and interval; for resampling tests the draws and seed. A test that does
not apply here is the same row with no statistic, no decision and the reason as its verdict
(`not_applicable`). tests.csv holds one typed row per test and model (`frame`, `read`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

NAN = math.nan


@dataclass(frozen=True)
class HypothesisTest:
    test: str  # the procedure: utest, wald, suest, bdiff, sobel, wild, ...
    hypothesis: str  # which of its hypotheses: a term, a pair of groups, a step (a key: no spaces)
    null: str  # H0 in words
    estimate: float = NAN  # the tested quantity, where it is one number
    se: float = NAN
    point: float = NAN  # where that quantity is evaluated: a slope's x, θ(x)'s percentile, the two lines' breakpoint
    statistic: float = NAN
    distribution: str = ""  # the statistic's reference under H0: t, normal, chi2, F, permutation, bootstrap, ...
    df: float = NAN
    df_denom: float = NAN
    p_value: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    alpha: float = 0.05
    reject: bool | None = None  # None: the test does not apply here
    draws: int | None = None  # resampling tests: how many draws, from which seed
    seed: int | None = None
    clusters: int | None = None  # the clusters behind the statistic's variance, where it is clustered
    verdict: str = ""

    @property
    def applies(self) -> bool:
        return self.reject is not None


def symbol(distribution: str, df: float = NAN, df_denom: float = NAN) -> str:
    """`t(2659)`, `F(2, 1999)`, `chi2(2)`, `z`: the statistic's name as a reader writes it."""
    dfs = [f"{d:g}" for d in (df, df_denom) if not math.isnan(d)]
    name = {"normal": "z"}.get(distribution, distribution if distribution in ("t", "F", "chi2") else "statistic")
    return f"{name}({', '.join(dfs)})" if dfs else name


def p_text(p: float) -> str:
    return "p < 1e-15" if p < 1e-15 else f"p = {p:.3g}"  # below that, doubles hold no digit of a two-sided p


def p_test(test: str, hypothesis: str, null: str, statistic: float, p_value: float, distribution: str,
           df: float = NAN, df_denom: float = NAN, alpha: float = 0.05, **more) -> HypothesisTest:
    """A test decided by its p-value: H0 is rejected when p < alpha. No p (an undefined variance) means it does not apply."""
    if math.isnan(p_value):
        return not_applicable(test, hypothesis, null, "its variance is not positive, so the statistic is undefined")
    reject = bool(p_value < alpha)
    verdict = (f"{'Rejected' if reject else 'Not rejected'} at {alpha:g}: {null} "
               f"({symbol(distribution, df, df_denom)} = {statistic:.4g}, {p_text(p_value)})")
    return HypothesisTest(test, hypothesis, null, statistic=float(statistic), distribution=distribution, df=float(df),
                          df_denom=float(df_denom), p_value=float(p_value), alpha=alpha, reject=reject, verdict=verdict, **more)


def interval_test(test: str, hypothesis: str, null: str, estimate: float, ci_low: float, ci_high: float,
                  distribution: str, alpha: float = 0.05, **more) -> HypothesisTest:
    """A test decided by its (1 − alpha) interval: H0 (the quantity is 0) is rejected when the interval excludes 0."""
    reject = bool(not ci_low <= 0 <= ci_high)
    verdict = (f"{'Rejected' if reject else 'Not rejected'} at {alpha:g}: {null} "
               f"({100 * (1 - alpha):g}% {distribution} interval [{ci_low:.4g}, {ci_high:.4g}] {'excludes' if reject else 'contains'} 0)")
    return HypothesisTest(test, hypothesis, null, estimate=float(estimate), ci_low=float(ci_low), ci_high=float(ci_high),
                          distribution=distribution, alpha=alpha, reject=reject, verdict=verdict, **more)


def not_applicable(test: str, hypothesis: str, null: str, because: str) -> HypothesisTest:
    """The row of a test that does not apply here; `because` completes "Does not apply: …"."""
    return HypothesisTest(test, hypothesis, null, verdict=f"Does not apply: {because}")


# tests.csv, typed: each column holds one kind of value.
_TEXT = ("model", "test", "hypothesis", "null", "distribution", "verdict")
_COUNTS = ("draws", "seed", "clusters")
COLUMNS = ("model", *(f.name for f in fields(HypothesisTest)))
DTYPES = {c: "string" if c in _TEXT else "Int64" if c in _COUNTS else "boolean" if c == "reject" else "float64" for c in COLUMNS}


def frame(rows: Iterable[tuple[str, HypothesisTest]]) -> pd.DataFrame:
    """tests.csv's frame: one row per (model, test), in COLUMNS order with DTYPES."""
    records = [{"model": model, **{f.name: getattr(t, f.name) for f in fields(t)}} for model, t in rows]
    return pd.DataFrame.from_records(records, columns=list(COLUMNS)).astype(DTYPES)


def read(path: Path) -> pd.DataFrame:
    """A tests.csv with its columns typed as `frame` wrote them."""
    return pd.read_csv(path, dtype={c: d for c, d in DTYPES.items() if d != "boolean"}, keep_default_na=False,
                       na_values={c: [""] for c in COLUMNS if c not in _TEXT}).astype(DTYPES)
