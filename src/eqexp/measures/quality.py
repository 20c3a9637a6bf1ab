"""Export product quality by the KSW (2013) demand residual (methods.md §1).

flows ─clean (§1.4)─▶ firm×hs6×destination×year ─drop singletons─▶ y = ln q + σ_h ln p
  ─residual on hs6 and destination×year FE (alternating projections)─▶ λ̂ = ε̂/(σ_h−1)
  ─min–max within hs6, pooled over years─▶ r_quality ─value-weighted─▶ firm-year TQ ("quality").

Every step that removes rows appends {step, rows_in, dropped, reason, rows_out} to the log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from eqexp.data.validate import FLOWS, DataValidationError, require_columns, validate
from eqexp.steps import StepLog, drop_rows, record

INTERMEDIARY_KEYWORDS = ("进出口", "经贸", "贸易", "科贸", "外经")  # Ahn, Khandelwal & Wei (2011)
# Agricultural and resource products, precious metals, arms, art and special codes (§1.4 step 7).
EXCLUDED_CHAPTERS = frozenset([f"{c:02d}" for c in range(1, 28)] + ["71", "93", "97", "98", "99"])
RANGE_TOL = 1e-8  # λ̂ ranges below this are max == min: residuals are only accurate to ~1e-10
# Why each record-level step drops rows (`clean_records`; `build.records_sql` runs the same steps out of core).
REASONS = {
    "missing_keys": "missing or blank firm, hs6, destination, year, value or quantity",
    "nonpositive": "value <= 0 or quantity <= 0",
    "trade_mode": "trade mode not in {modes}",
    "intermediaries": "firm name contains one of {keywords}",
    "unit_not_modal": "unit differs from the product-year modal unit (or is missing)",
    "unit_changes": "product whose unit changes over years",
    "aggregate": "records (monthly transactions, split flows) summed to firm × hs6 × destination × year",
}

Sigma = float | Mapping[str, float] | pd.Series
NormaliseBy = Literal["hs6", "hs6_dest_year"]
RauchClass = Literal["conservative", "liberal"]


# --------------------------------------------------------------------------- cleaning (§1.4)


def per_value(values: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`fn` applied to each distinct value once and spread back to the rows (missing stays NA):
    customs columns repeat a few thousand codes and names over millions of records."""
    codes, uniques = pd.factorize(values)
    return fn(pd.Series(uniques)).reindex(codes).set_axis(values.index)


def hs6_text(hs6: pd.Series) -> pd.Series:
    """HS6 codes as 6-character text, restoring leading zeros lost to integer storage; blanks become NA.

    Categorical: millions of records share a few thousand codes."""
    if pd.api.types.is_numeric_dtype(hs6):
        hs6 = hs6.astype("Int64")
    codes, uniques = pd.factorize(hs6)
    stripped = pd.Series(uniques).astype("string").str.strip()
    return pd.Series(categorical(codes, stripped.mask(stripped.eq("")).str.zfill(6)), index=hs6.index)


def categorical(codes: np.ndarray, labels: pd.Series) -> pd.Categorical:
    """Rows given as codes into `labels` (−1: missing), as a Categorical; equal labels become one category."""
    inverse, categories = pd.factorize(labels)
    rows = np.where(codes >= 0, inverse[np.maximum(codes, 0)], -1) if len(labels) else codes
    return pd.Categorical.from_codes(rows, categories=categories)


def missing_keys(flows: pd.DataFrame) -> pd.Series:
    """Records with a missing or blank firm, product, destination, year, value or quantity."""
    cols = ["firm_id", "hs6", "destination", "year", "value_usd", "quantity"]
    bad = flows[cols].isna().any(axis=1)
    for c in cols:
        if not pd.api.types.is_numeric_dtype(flows[c]):
            bad |= per_value(flows[c], lambda v: v.astype("string").str.strip().eq("")).fillna(False).astype(bool)
    return bad


def drop_missing(flows: pd.DataFrame, log: StepLog | None = None) -> pd.DataFrame:
    """Drop records with a missing or blank firm, product, destination, year, value or quantity."""
    return drop_rows(flows, missing_keys(flows), "missing_keys", REASONS["missing_keys"], log)


def drop_nonpositive(flows: pd.DataFrame, log: StepLog | None = None) -> pd.DataFrame:
    bad = (flows["value_usd"] <= 0) | (flows["quantity"] <= 0)
    return drop_rows(flows, bad, "nonpositive", REASONS["nonpositive"], log)


def keep_trade_modes(flows: pd.DataFrame, modes: Collection[int | str] | None, log: StepLog | None = None) -> pd.DataFrame:
    """Keep only the given customs trade modes (e.g. {10}: general trade, §1.4 step 8); None keeps all."""
    if modes is None:
        return flows
    require_columns(flows, ["trade_mode"], "customs flows")
    reason = REASONS["trade_mode"].format(modes=sorted({str(m) for m in modes}))
    return drop_rows(flows, ~in_trade_modes(flows, modes), "trade_mode", reason, log)


def in_trade_modes(flows: pd.DataFrame, modes: Collection[int | str]) -> pd.Series:
    """Records of the given trade modes (compared as text)."""
    wanted = {str(m) for m in modes}
    mode = flows["trade_mode"].astype("Int64") if pd.api.types.is_numeric_dtype(flows["trade_mode"]) else flows["trade_mode"]
    return per_value(mode, lambda v: v.astype("string").str.strip().isin(wanted)).fillna(False).astype(bool)


def drop_intermediaries(
    flows: pd.DataFrame, keywords: Sequence[str] = INTERMEDIARY_KEYWORDS, log: StepLog | None = None
) -> pd.DataFrame:
    """Drop trade intermediaries: firm names containing any keyword (needs a firm_name column)."""
    if "firm_name" not in flows.columns:
        record(log, "intermediaries", len(flows), len(flows), "skipped: no firm_name column")
        return flows
    return drop_rows(flows, intermediary(flows, keywords), "intermediaries",
                     REASONS["intermediaries"].format(keywords=", ".join(keywords)), log)


def intermediary(flows: pd.DataFrame, keywords: Sequence[str] = INTERMEDIARY_KEYWORDS) -> pd.Series:
    """Records of trade intermediaries: firm names containing any keyword."""
    pattern = "|".join(map(re.escape, keywords))
    return per_value(flows["firm_name"], lambda v: v.astype("string").str.contains(pattern, regex=True)).fillna(False).astype(bool)


def harmonise_units(flows: pd.DataFrame, log: StepLog | None = None) -> pd.DataFrame:
    """One quantity unit per product: drop records off the product-year modal unit (ties: first
    unit in sort order), then whole products whose modal unit changes over years."""
    counts = flows.groupby(["hs6", "year", "unit"]).size().rename("n").reset_index()
    modal = counts.sort_values(["n", "unit"], ascending=[False, True]).drop_duplicates(["hs6", "year"])
    modal = modal[["hs6", "year", "unit"]].rename(columns={"unit": "modal_unit"})
    flows = flows.merge(modal, on=["hs6", "year"], how="left")
    flows = drop_rows(flows, flows["unit"].ne(flows["modal_unit"]).fillna(True).astype(bool), "unit_not_modal",
                      REASONS["unit_not_modal"], log).drop(columns="modal_unit")
    changes = flows.groupby("hs6")["unit"].transform("nunique") > 1
    return drop_rows(flows, changes, "unit_changes", REASONS["unit_changes"], log)


def aggregate_flows(flows: pd.DataFrame, log: StepLog | None = None) -> pd.DataFrame:
    """Sum value and quantity to firm × hs6 × destination × year (one unit per product by now)."""
    out = flows.groupby(["firm_id", "hs6", "destination", "year"], as_index=False, sort=False).agg(
        value_usd=("value_usd", "sum"), quantity=("quantity", "sum"))
    record(log, "aggregate", len(flows), len(out), REASONS["aggregate"])
    return out


def drop_small_flows(
    flows: pd.DataFrame, min_value: float = 50, min_quantity: float = 1, log: StepLog | None = None
) -> pd.DataFrame:
    bad = (flows["value_usd"] < min_value) | (flows["quantity"] < min_quantity)
    return drop_rows(flows, bad, "small_flows", f"value < {min_value} USD or quantity < {min_quantity}", log)


def group_percentiles(x: np.ndarray, groups: np.ndarray, pcts: Sequence[float]) -> np.ndarray:
    """Percentiles of x per group (codes 0..G−1), shape (len(pcts), G), as Stata's _pctile (Hyndman–Fan type 2)."""
    xs = x[np.lexsort((x, groups))]
    n = np.bincount(groups)
    start = np.cumsum(n) - n
    out = []
    for pct in pcts:
        pos = n * pct  # P = n·pct/100, kept ×100 so an integer pct stays exact
        j = (pos // 100).astype(np.int64)  # 1-based: P integer → (x_(j) + x_(j+1))/2, else x_(j+1)
        upper = xs[start + np.clip(j, 0, n - 1)]
        lower = xs[start + np.clip(j - 1, 0, n - 1)]
        out.append(np.where(pos % 100 == 0, (lower + upper) / 2, upper))
    return np.array(out)


def drop_unit_value_outliers(
    flows: pd.DataFrame,
    pct: tuple[float, float] = (1, 99),
    by: Literal["hs6", "hs6_year"] = "hs6",
    log: StepLog | None = None,
) -> pd.DataFrame:
    """Drop unit values below the lower or above the upper percentile within product (or product-year)."""
    keys = ["hs6"] if by == "hs6" else ["hs6", "year"]
    groups = flows.groupby(keys, sort=False).ngroup().to_numpy()
    p = (flows["value_usd"] / flows["quantity"]).to_numpy(float)
    lo, hi = group_percentiles(p, groups, pct)[:, groups]
    reason = f"unit value outside P{pct[0]}–P{pct[1]} within {by}"
    return drop_rows(flows, (p < lo) | (p > hi), "unit_value_outliers", reason, log)


def drop_thin_products(flows: pd.DataFrame, min_obs: int = 100, log: StepLog | None = None) -> pd.DataFrame:
    """Drop products with fewer than `min_obs` flows over all years (Shi's papers: about 100)."""
    bad = flows.groupby("hs6")["hs6"].transform("size") < min_obs
    return drop_rows(flows, bad, "thin_products", f"product with fewer than {min_obs} flows", log)


def drop_excluded_chapters(
    flows: pd.DataFrame, chapters: Collection[str] = EXCLUDED_CHAPTERS, log: StepLog | None = None
) -> pd.DataFrame:
    bad = flows["hs6"].str[:2].isin(chapters)
    return drop_rows(flows, bad, "excluded_chapters", f"HS chapters {chapter_ranges(chapters)} (not manufactured goods)", log)


def chapter_ranges(chapters: Collection[str]) -> str:
    """'01–27, 71, 93, 97–99' for the chapters listed."""
    numbers = sorted(int(c) for c in chapters)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]:02d}–{r[-1]:02d}" if len(r) > 1 else f"{r[0]:02d}" for r in runs)


def keep_differentiated(flows: pd.DataFrame, rauch: pd.DataFrame, classification: RauchClass = "liberal",
                        log: StepLog | None = None) -> pd.DataFrame:
    """Keep differentiated goods (n) of Rauch's (1999) conservative or liberal classification (a table hs6, con, lib)."""
    column = {"conservative": "con", "liberal": "lib"}[classification]
    kind = pd.Series(rauch[column].astype(str).str.strip().to_numpy(), index=hs6_text(rauch["hs6"]).to_numpy())
    differentiated = per_value(flows["hs6"], lambda codes: codes.map(kind).eq("n")).fillna(False).astype(bool)
    return drop_rows(flows, ~differentiated, "not_differentiated",
                     f"not a differentiated good (n) in Rauch's {classification} classification, or not in it", log)


def clean_flows(flows: pd.DataFrame, *, trade_modes: Collection[int | str] | None = None, intermediaries: bool = True,
                log: StepLog | None = None, **flow_steps: Any) -> pd.DataFrame:
    """The cleaning steps of methods §1.4 that apply to a flows table, in order; returns firm×hs6×dest×year flows.

    Records may be monthly (summed to the year after the units rule, `clean_records`); `flow_steps` are the
    options of the flow-level steps (`clean_aggregated`: min_value, outlier_pct, rauch, ...). HS vintages (step 3)
    are harmonised before, by `measures.hs.convert`.
    """
    flows = clean_records(flows, trade_modes=trade_modes, intermediaries=intermediaries, log=log)
    return clean_aggregated(flows, **flow_steps, log=log)


def clean_records(flows: pd.DataFrame, *, trade_modes: Collection[int | str] | None = None, intermediaries: bool = True,
                  log: StepLog | None = None) -> pd.DataFrame:
    """The record-level steps of `clean_flows`: keys, signs, trade modes, intermediaries, the units rule, then the
    records summed to firm × hs6 × destination × year (`build.records_sql` runs the same steps out of core)."""
    validate(flows, FLOWS, "customs flows")
    flows = flows.assign(hs6=hs6_text(flows["hs6"]))
    flows = drop_missing(flows, log)
    flows = drop_nonpositive(flows, log)
    flows = keep_trade_modes(flows, trade_modes, log)
    if intermediaries:
        flows = drop_intermediaries(flows, log=log)
    flows = harmonise_units(flows, log)
    return aggregate_flows(flows, log)


def clean_aggregated(
    flows: pd.DataFrame,
    *,
    min_value: float = 50,
    min_quantity: float = 1,
    outlier_pct: tuple[float, float] = (1, 99),
    outlier_by: Literal["hs6", "hs6_year"] = "hs6",
    min_obs_per_product: int = 100,
    chapters: Collection[str] = EXCLUDED_CHAPTERS,
    rauch: pd.DataFrame | None = None,
    rauch_class: RauchClass = "liberal",
    log: StepLog | None = None,
) -> pd.DataFrame:
    """The flow-level steps of `clean_flows`, on firm × hs6 × destination × year flows."""
    flows = drop_small_flows(flows, min_value, min_quantity, log)
    flows = drop_unit_value_outliers(flows, outlier_pct, outlier_by, log)
    flows = drop_thin_products(flows, min_obs_per_product, log)
    flows = drop_excluded_chapters(flows, chapters, log=log)
    if rauch is not None:
        flows = keep_differentiated(flows, rauch, rauch_class, log)
    return flows.reset_index(drop=True)


# --------------------------------------------------------------------------- estimation (§1.1, §1.5)


def drop_singletons(flows: pd.DataFrame, fe: Sequence[Sequence[str]] = (("hs6",), ("destination", "year")),
                    log: StepLog | None = None) -> pd.DataFrame:
    """Drop rows alone in any fixed-effect group, repeating until none is left (as reghdfe)."""
    codes = [flows.groupby(list(cols), sort=False).ngroup().to_numpy() for cols in fe]
    keep = np.ones(len(flows), dtype=bool)
    passes = 0
    while True:
        single = np.zeros_like(keep)
        for c in codes:
            single |= keep & (np.bincount(c, weights=keep)[c] == 1)
        if not single.any():
            break
        keep &= ~single
        passes += 1
    names = " or ".join("×".join(cols) for cols in fe)
    return drop_rows(flows, ~keep, "singletons", f"singletons in {names}, removed iteratively in {passes} pass(es)", log)


def _sweep(r: np.ndarray, groups, counts, order) -> tuple[np.ndarray, float]:
    """Subtract group means for each grouping in `order`; returns the result and the largest change made."""
    change = 0.0
    for k in order:
        means = np.bincount(groups[k], weights=r, minlength=len(counts[k])) / counts[k]
        r = r - means[groups[k]]
        change += np.abs(means).max()
    return r, change


def _sweeps(r: np.ndarray, groups, counts, tol: float, max_sweeps: int) -> tuple[np.ndarray, int, bool]:
    """Plain alternating projections until a whole sweep changes no element by `tol` or more."""
    for sweep in range(1, max_sweeps + 1):
        r, change = _sweep(r, groups, counts, range(len(groups)))
        if change < tol:
            return r, sweep, True
    return r, max_sweeps, False


def _span_part(y: np.ndarray, groups, counts, tol: float, maxiter: int) -> tuple[np.ndarray, int]:
    """The part of y in the span of the dummies, by conjugate gradients on (I − T)u = (I − T)y with T
    the symmetric sweep 1..K..1 (reghdfe's acceleration of alternating projections)."""
    order = [*range(len(groups)), *range(len(groups) - 2, -1, -1)]

    def one_minus_t(v: np.ndarray) -> np.ndarray:
        return v - _sweep(v, groups, counts, order)[0]

    u = np.zeros_like(y)
    r = one_minus_t(y)
    p, rr = r.copy(), r @ r
    for it in range(1, maxiter + 1):
        ap = one_minus_t(p)
        pap = p @ ap
        if rr == 0 or pap <= 0:
            break
        alpha = rr / pap
        u += alpha * p
        r -= alpha * ap
        if np.abs(r).max() < tol / 10:  # a symmetric sweep would now change no element by tol/10
            break
        rr, rr_old = r @ r, rr
        p = r + (rr / rr_old) * p
    return u, it


def demean(y: np.ndarray, groups: Sequence[np.ndarray], tol: float = 1e-10, maxiter: int = 10_000,
           cg_after: int = 50) -> tuple[np.ndarray, int]:
    """Residual of y on the dummies of each grouping (dense codes 0..G−1), by alternating projections.

    Sweeps subtract group means in turn until a whole sweep changes no element by `tol` or
    more; the fixed point is the OLS residual with all sets of dummies. Customs data converge
    in a few dozen sweeps; weakly connected products and destinations can need thousands, so
    after `cg_after` sweeps conjugate gradients remove what is left. Returns (residual, iterations).
    """
    counts = [np.bincount(g) for g in groups]
    r, n, done = _sweeps(y - y.mean(), groups, counts, tol, cg_after)
    if not done:
        u, n_cg = _span_part(r, groups, counts, tol, maxiter)
        r, n_polish, done = _sweeps(r - u, groups, counts, tol, maxiter)
        n += n_cg + n_polish
    if not done:
        raise RuntimeError(f"alternating projections did not reach tol={tol} in {maxiter} sweeps")
    return r, n


def assign_sigma(hs6: pd.Series, sigma: Sigma, fallback: float = 5.0) -> pd.DataFrame:
    """σ_h per row and its source: a constant, or a table keyed by HS6 or HS3 text codes (HS6 wins),
    then the table's HS2-chapter mean, then `fallback`."""
    for name, value in (("sigma", sigma), ("sigma_fallback", fallback)):
        if np.isscalar(value) and not value > 1:
            raise DataValidationError(f"{name} = {value}: the elasticity must exceed 1, since λ̂ = ε̂/(σ−1).")
    if np.isscalar(sigma):
        return pd.DataFrame({"sigma": float(sigma), "sigma_source": "constant"}, index=hs6.index)
    table = pd.Series(sigma, dtype=float)
    table.index = table.index.astype(str)
    bad = ~table.index.str.fullmatch(r"\d{3}|\d{6}") | ~(table > 1)
    if bad.any():
        raise DataValidationError(
            f"sigma table: {int(bad.sum())} entr(ies) are not 3- or 6-digit text codes with σ > 1, e.g. "
            f"{table[bad].head(5).to_dict()}. Fix: key the table by HS3/HS6 codes as text with leading zeros "
            f"('090', '847130') and keep elasticities above 1.")
    codes, products = pd.factorize(hs6)
    products = pd.Series(products)
    by6 = products.map(table[table.index.str.len() == 6])
    by3 = products.str[:3].map(table[table.index.str.len() == 3])
    by2 = products.str[:2].map(table.groupby(table.index.str[:2]).mean())
    value = by6.fillna(by3).fillna(by2).fillna(fallback).to_numpy(float)
    source = np.select([by6.notna(), by3.notna(), by2.notna()], ["hs6", "hs3", "hs2_mean"], "constant")
    return pd.DataFrame({"sigma": value[codes], "sigma_source": source[codes]}, index=hs6.index)


def ksw_residual(flows: pd.DataFrame, sigma: Sigma = 5.0, *, sigma_fallback: float = 5.0, tol: float = 1e-10,
                 log: StepLog | None = None) -> pd.DataFrame:
    """Add sigma, y = ln q + σ ln p and its residual on hs6 and destination×year fixed effects (eq. 1)."""
    flows = flows.join(assign_sigma(flows["hs6"], sigma, sigma_fallback))
    counts = flows["sigma_source"].value_counts()
    record(log, "sigma", len(flows), len(flows), "σ source per flow: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    ln_p = np.log(flows["value_usd"] / flows["quantity"])
    y = np.log(flows["quantity"]) + flows["sigma"] * ln_p
    groups = [pd.factorize(flows["hs6"])[0], flows.groupby(["destination", "year"], sort=False).ngroup().to_numpy()]
    resid, sweeps = demean(y.to_numpy(float), groups, tol)
    record(log, "residual", len(flows), len(flows), f"alternating projections converged in {sweeps} iterations, tol {tol:g}")
    return flows.assign(ln_p=ln_p, y=y, resid=resid)


def normalise(flows: pd.DataFrame, by: NormaliseBy = "hs6", log: StepLog | None = None) -> pd.DataFrame:
    """r_quality = (λ̂ − min) / (max − min) within product pooled over years (or product×destination×year);
    groups with max == min are dropped, not set to 0 or 0.5."""
    keys = ["hs6"] if by == "hs6" else ["hs6", "destination", "year"]
    g = flows.groupby(keys, sort=False)["ln_lambda"]
    lo, hi = g.transform("min"), g.transform("max")
    flat = (hi - lo) <= RANGE_TOL
    return drop_rows(flows.assign(r_quality=(flows["ln_lambda"] - lo) / (hi - lo)), flat, "flat_groups",
                     f"max == min of λ̂ within {by}", log)


def firm_year_quality(flows: pd.DataFrame) -> pd.DataFrame:
    """TQ_ft = Σ v·r_quality / Σ v over the firm's flows in the year (eq. 3)."""
    agg = flows.assign(vr=flows["value_usd"] * flows["r_quality"]).groupby(["firm_id", "year"], as_index=False).agg(
        vr=("vr", "sum"), export_value=("value_usd", "sum"), n_flows=("vr", "size"))
    quality = (agg["vr"] / agg["export_value"]).clip(0, 1)  # clip: rounding only
    return agg.assign(quality=quality)[["firm_id", "year", "quality", "export_value", "n_flows"]]


def flow_quality(
    flows: pd.DataFrame,
    *,
    sigma: Sigma = 5.0,
    sigma_fallback: float = 5.0,
    divide_by_sigma: bool = True,
    normalise_by: NormaliseBy = "hs6",
    tol: float = 1e-10,
    log: StepLog | None = None,
) -> pd.DataFrame:
    """Flow-level quality from cleaned flows: adds sigma, sigma_source, ln_p, y, resid, ln_lambda, r_quality."""
    flows = drop_singletons(flows, log=log)
    flows = ksw_residual(flows, sigma, sigma_fallback=sigma_fallback, tol=tol, log=log)
    # The Chinese do-file keeps the raw residual; within a product σ is constant, so r_quality is the same.
    flows["ln_lambda"] = flows["resid"] / (flows["sigma"] - 1) if divide_by_sigma else flows["resid"]
    return normalise(flows, normalise_by, log)


def ksw_quality(
    flows: pd.DataFrame,
    *,
    sigma: Sigma = 5.0,
    sigma_fallback: float = 5.0,
    divide_by_sigma: bool = True,
    normalise_by: NormaliseBy = "hs6",
    min_obs_per_product: int = 100,
    trade_modes: Collection[int | str] | None = None,
    intermediaries: bool = True,
    min_value: float = 50,
    min_quantity: float = 1,
    outlier_pct: tuple[float, float] = (1, 99),
    outlier_by: Literal["hs6", "hs6_year"] = "hs6",
    tol: float = 1e-10,
) -> tuple[pd.DataFrame, StepLog]:
    """Firm-year export quality (firm_id, year, quality, export_value, n_flows) from raw customs flows, and the step log.

    `sigma`: Broda–Weinstein table keyed by HS3/HS6 text codes (the canonical variant A; HS2
    mean, then `sigma_fallback`, where a product is missing) or a constant (5 or 10, variant C).
    """
    log: StepLog = []
    clean = clean_flows(flows, trade_modes=trade_modes, intermediaries=intermediaries, min_value=min_value,
                        min_quantity=min_quantity, outlier_pct=outlier_pct, outlier_by=outlier_by,
                        min_obs_per_product=min_obs_per_product, log=log)
    fq = flow_quality(clean, sigma=sigma, sigma_fallback=sigma_fallback, divide_by_sigma=divide_by_sigma,
                      normalise_by=normalise_by, tol=tol, log=log)
    return firm_year_quality(fq), log
