"""Market integration by the relative-price method (methods.md §2).

From provincial chain price indices (previous year = 100) by category:
|ΔQ| = |ln I_it − ln I_jt| per pair, category and year → demeaned within (category, year)
over the pair set → variance across categories (ddof=1, as Stata) = pair-year segmentation
→ mean over partners = province-year segmentation → integration index by a transform.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd

from eqexp.data.geography import adjacent_pairs
from eqexp.data.validate import PRICE_INDEX, validate
from eqexp.steps import StepLog, drop_rows, record
from eqexp.measures.classify import province_code
from eqexp.terms import lag_name

PairSet = Literal["adjacent", "all"]
Transform = Literal["log_sqrt_inv", "sqrt_inv", "inv", "neg", "seg"]

TRANSFORMS = {
    "log_sqrt_inv": lambda s: -0.5 * np.log(s),  # ln sqrt(1/seg): the reference study's "Market" scale
    "sqrt_inv": lambda s: 1 / np.sqrt(s),  # 盛斌 & 毛其淋 (2011)
    "inv": lambda s: 1 / s,
    "neg": lambda s: -s,
    "seg": lambda s: s,  # segmentation itself (higher = less integrated)
}


def pair_set(kind: PairSet, provinces: Collection[int]) -> pd.DataFrame:
    """Unordered province pairs (i < j) among `provinces`: land neighbours (Hainan–Guangdong) or all."""
    present = set(provinces)
    if kind == "adjacent":
        pairs = [p for p in adjacent_pairs() if p[0] in present and p[1] in present]
    elif kind == "all":
        pairs = list(combinations(sorted(present), 2))
    else:
        raise ValueError(f"unknown pair set {kind!r}; use adjacent or all")
    return pd.DataFrame(pairs, columns=["i", "j"], dtype="int64")


def relative_price_changes(index: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """|ΔQ^k_ijt| = |ln I^k_it − ln I^k_jt| for each pair with both indices (the 100s cancel)."""
    ln = index[["province", "category", "year"]].assign(ln=np.log(index["index"].to_numpy(float)))
    left = ln.rename(columns={"province": "i", "ln": "ln_i"})
    right = ln.rename(columns={"province": "j", "ln": "ln_j"})
    dq = pairs.merge(left, on="i").merge(right, on=["j", "category", "year"])
    return dq.assign(abs_dq=(dq["ln_i"] - dq["ln_j"]).abs())[["i", "j", "category", "year", "abs_dq"]]


def price_changes(
    index: pd.DataFrame,
    pairs: PairSet | pd.DataFrame = "all",
    *,
    min_categories: int = 6,
    exclude: Collection[int] = (),
    log: StepLog | None = None,
) -> pd.DataFrame:
    """|ΔQ| and q = |ΔQ| demeaned within (category, year) over the pair set: columns i, j, category, year, abs_dq, q.

    `index` is the long table (province, year, category, index); `pairs` a named set or a
    DataFrame of pairs (i, j). Pair-years with fewer than `min_categories` categories observed
    for both provinces (Tibet's gaps) are dropped before demeaning, so q has mean 0 over the
    pairs used.
    """
    keys = ["province", "year", "category", "index"]
    index = drop_rows(index, index[keys].isna().any(axis=1), "price_index_missing", "index value or key missing", log)
    excluded = index["province"].isin(exclude)
    index = drop_rows(index, excluded, "price_index_excluded", f"provinces excluded: {sorted(exclude)}", log)
    pair_df = pair_set(pairs, index["province"].unique()) if isinstance(pairs, str) else pairs
    dq = relative_price_changes(index, pair_df)
    name = pairs if isinstance(pairs, str) else "given"
    record(log, "pair_category_years", len(dq), len(dq), f"{name} pairs × categories × years with both indices")
    need = max(min_categories, 2)  # a variance needs two categories
    n_cat = dq.groupby(["i", "j", "year"])["category"].transform("size")
    dq = drop_rows(dq, n_cat < need, "pair_min_categories", f"pair-years with fewer than {need} categories", log)
    return dq.assign(q=dq["abs_dq"] - dq.groupby(["category", "year"])["abs_dq"].transform("mean"))


def pair_segmentation(changes: pd.DataFrame) -> pd.DataFrame:
    """Pair-year segmentation Var_k(q^k_ijt) with ddof=1 (Stata's sd/summarize): columns i, j, year, seg, n_categories."""
    grouped = changes.groupby(["i", "j", "year"])["q"]
    return pd.DataFrame({"seg": grouped.var(ddof=1), "n_categories": grouped.size()}).reset_index()


def province_segmentation(pair_seg: pd.DataFrame) -> pd.DataFrame:
    """seg_it = mean over partners j of the pair-year segmentation; each pair counts for both ends."""
    ends = pd.concat([pair_seg.rename(columns={"i": "province"}), pair_seg.rename(columns={"j": "province"})])
    return ends.groupby(["province", "year"], as_index=False).agg(seg=("seg", "mean"), n_partners=("seg", "size"))


def national_segmentation(pair_seg: pd.DataFrame) -> pd.DataFrame:
    """National segmentation by year: the mean over all pairs in the set."""
    return pair_seg.groupby("year", as_index=False).agg(seg=("seg", "mean"), n_pairs=("seg", "size"))


def integration_index(seg: pd.Series, transform: Transform = "log_sqrt_inv") -> pd.Series:
    """Integration from segmentation; the transform sets coefficient sizes and turning points, so log it."""
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; use one of {', '.join(TRANSFORMS)}")
    with np.errstate(divide="ignore"):
        return TRANSFORMS[transform](seg.astype(float))


def market_integration(
    index: pd.DataFrame,
    *,
    pairs: PairSet | pd.DataFrame = "all",
    transform: Transform = "log_sqrt_inv",
    min_categories: int = 6,
    exclude: Collection[int] = (),
    file: str = "price index",
) -> tuple[pd.DataFrame, StepLog]:
    """Province-year market integration: columns province, year, seg, n_partners, market; and the step log.

    Defaults: all province pairs (the reference study pairs every province; methods §2 gives no
    [R] between Gui et al.'s adjacent pairs and all), log_sqrt_inv (matches the study's Market
    range), at least 6 categories per pair-year.
    """
    validate(index, PRICE_INDEX, file)
    index = index.assign(province=province_code(index["province"]))
    log: StepLog = []
    changes = price_changes(index, pairs, min_categories=min_categories, exclude=exclude, log=log)
    seg = province_segmentation(pair_segmentation(changes))
    seg["market"] = integration_index(seg["seg"], transform)
    seg = drop_rows(seg, ~np.isfinite(seg["market"]), "market_not_finite", "segmentation 0: integration undefined", log)
    return seg, log


def province_year_lags(
    mi: pd.DataFrame, ks: Sequence[int] = (1, 2, 3), cols: Sequence[str] = ("market",), keys: Sequence[str] = ("province",)
) -> pd.DataFrame:
    """Add lag_name(col, k) = value in calendar year t−k of the same province (gap-aware self-merge, never shift).

    Built on the province-year panel before merging to firms, so firm gaps do not matter;
    a lag is missing when the province has no value in t−k (early years are not back-filled).
    """
    out = mi
    for k in ks:
        lagged = mi[[*keys, "year", *cols]].assign(year=mi["year"] + k).rename(columns={c: lag_name(c, k) for c in cols})
        out = out.merge(lagged, on=[*keys, "year"], how="left", validate="one_to_one")
    return out
