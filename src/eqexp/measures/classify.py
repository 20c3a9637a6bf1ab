"""Firm classifications for heterogeneity splits (methods.md §8): ownership, region, factor intensity.

Province codes, the three-belt regions and adjacency live in `eqexp.data.geography`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from eqexp.data.geography import REGION_OF

# --------------------------------------------------------------------------- codes


def province_code(code: pd.Series) -> pd.Series:
    """Two-digit NBS province code (11..65) from a 2-, 6- or 12-digit administrative code."""
    text = pd.to_numeric(code, errors="coerce").astype("Int64").astype("string")
    return pd.to_numeric(text.str[:2], errors="coerce").astype("Int64").rename("province")


def cic2(industry: pd.Series) -> pd.Series:
    """Two-digit CIC industry (GB/T 4754) from a 4-digit code (text or integer); 2-digit codes pass through."""
    num = pd.to_numeric(industry, errors="coerce").astype("Int64")
    return num.where(num < 100, num // 100).rename("cic2")


# --------------------------------------------------------------------------- ownership

SOE_CODES = (110, 141, 143, 151)  # 国有企业, 国有联营, 国有与集体联营, 国有独资公司


def soe(accounts: pd.DataFrame, status: Literal["initial", "current"] = "initial", codes=SOE_CODES) -> pd.Series:
    """1 if state-owned by registration type, else 0 (NA where the type is missing).

    "initial" (default, methods §8 [R] for splits): the status in the firm's first year with a
    known registration type, so a firm that privatises stays in one group. "current": year t.
    """
    reg = pd.to_numeric(accounts["registration_type"], errors="coerce")
    current = reg.isin(codes).astype("Int64").mask(reg.isna()).rename("soe")
    if status == "current":
        return current
    order = np.argsort(accounts["year"].to_numpy(), kind="stable")
    initial = current.iloc[order].groupby(accounts["firm_id"].iloc[order]).first()  # first() skips NA
    return accounts["firm_id"].map(initial).astype("Int64").rename("soe")


# --------------------------------------------------------------------------- regions

NORTHEAST = (21, 22, 23)  # NBS 2011: Liaoning, Jilin, Heilongjiang leave the East/Central belts


def _region_map(scheme: str) -> dict[int, str]:
    if scheme == "three_belt":
        return REGION_OF
    if scheme == "four_region":
        return REGION_OF | {p: "Northeast" for p in NORTHEAST}
    raise ValueError(f"unknown region scheme {scheme!r}; use three_belt or four_region")


def region(province: pd.Series, scheme: Literal["three_belt", "four_region"] = "three_belt") -> pd.Series:
    """East/Central/West (NBS three belts, default) or the NBS 2011 four regions, from province codes."""
    return province_code(province).map(_region_map(scheme)).astype("string").rename("region")


# --------------------------------------------------------------------------- factor intensity

LABOUR = (13, 14, 15, 17, 18, 19, 20, 21, 22, 23, 24, 29, 30, 31, 34, 42)
CAPITAL = (16, 25, 26, 28, 32, 33, 35, 36)
TECHNOLOGY = (27, 37, 39, 40, 41)


def factor_intensity(industry: pd.Series, scheme: Literal["three_way", "two_way"] = "three_way") -> pd.Series:
    """Labour/capital/technology-intensive from CIC2 (GB/T 4754-2002 codes, methods §8).

    "two_way" merges technology into capital. CIC2 codes in no list (e.g. 43 recycling) are NA.
    Remap 1994 and 2011 industry codes to the 2002 standard before calling.
    """
    groups = {"labour": LABOUR, "capital": CAPITAL, "technology": TECHNOLOGY}
    if scheme == "two_way":
        groups = {"labour": LABOUR, "capital": CAPITAL + TECHNOLOGY}
    elif scheme != "three_way":
        raise ValueError(f"unknown factor-intensity scheme {scheme!r}; use three_way or two_way")
    lookup = {c: name for name, codes in groups.items() for c in codes}
    return cic2(industry).map(lookup).astype("string").rename("factor_intensity")


def capital_labour_split(accounts: pd.DataFrame, base_year: int | None = None) -> pd.Series:
    """Two-way split of CIC2 industries at the median capital-labour ratio (methods §8 [R]).

    K/L = net fixed assets / employment, summed over the industry's firm-years (the sample
    mean, or `base_year` only); industries above the median of the industry ratios are
    "capital", the rest "labour".
    """
    data = accounts if base_year is None else accounts[accounts["year"] == base_year]
    sums = data.groupby(cic2(data["industry"]))[["net_fixed_assets", "employment"]].sum()
    kl = sums["net_fixed_assets"] / sums["employment"]
    label = pd.Series(np.where(kl > kl.median(), "capital", "labour"), index=kl.index)
    return cic2(accounts["industry"]).map(label).astype("string").rename("factor_intensity")
