"""Firm-level controls from ASIF accounts (methods.md §1.4 step 10, §8; seeds/003 §5.2.1).

Monetary columns are in thousand RMB, as the ASIF reports them. Output columns follow the
reference study: scale, age, roa, rdebt, invint, sa, fic.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from eqexp.data.validate import ACCOUNTS, DataValidationError, validate
from eqexp.steps import StepLog, drop_rows

SA_SIZE_CAP = np.log(4500)  # Hadlock–Pierce cap ln($4.5bn in $ million), applied on the RMB-million scale
SA_AGE_CAP = 37
FIRST_FOUNDING_YEAR = 1949


def clean_accounts(accounts: pd.DataFrame, *, min_employment: int = 8, log: StepLog | None = None) -> pd.DataFrame:
    """ASIF hygiene (Cai & Liu 2009; Brandt et al. 2012): each rule runs only if its columns are present.

    Total assets and founding year are checked by `firm_controls`, which needs them.
    """
    cols = set(accounts.columns)
    for col in ("sales", "output", "net_fixed_assets"):
        if col in cols:
            accounts = drop_rows(accounts, ~(accounts[col] > 0), f"{col}_nonpositive", f"{col} missing or <= 0", log)
    if "employment" in cols:
        accounts = drop_rows(accounts, ~(accounts["employment"] >= min_employment), "small_employment",
                             f"employment missing or < {min_employment}", log)
    for part in ("current_assets", "net_fixed_assets"):
        if part in cols:
            accounts = drop_rows(accounts, accounts["total_assets"] < accounts[part], f"assets_below_{part}",
                                 f"total assets < {part}", log)
    if {"accumulated_depreciation", "current_depreciation"} <= cols:
        accounts = drop_rows(accounts, accounts["accumulated_depreciation"] < accounts["current_depreciation"],
                             "depreciation", "accumulated depreciation < current depreciation", log)
    return accounts


def sa_index(
    total_assets: pd.Series,
    age_years: pd.Series,
    *,
    assets_to_million: float = 1000.0,
    size_cap: float | None = SA_SIZE_CAP,
    age_cap: float | None = SA_AGE_CAP,
) -> pd.Series:
    """Hadlock–Pierce SA = −0.737·S + 0.043·S² − 0.040·Age, S = ln(assets in RMB million).

    `assets_to_million` divides the asset column into RMB million (1000 for the ASIF's thousand
    RMB). The quadratic bottoms out at S ≈ 8.57, so with S capped at ln(4500) ≈ 8.41 SA falls
    monotonically in size, as in Hadlock and Pierce; feeding thousand RMB uncapped (S ≈ 10+)
    makes SA rise with size and flips its meaning.
    """
    size = np.log(total_assets / assets_to_million).clip(upper=size_cap)
    age = age_years.clip(upper=age_cap)
    return (-0.737 * size + 0.043 * size**2 - 0.040 * age).rename("sa")


def firm_controls(
    accounts: pd.DataFrame,
    *,
    size: Literal["assets", "employment"] = "assets",
    inventory_base: Literal["assets", "sales"] = "assets",
    assets_to_million: float = 1000.0,
    size_cap: float | None = SA_SIZE_CAP,
    age_cap: float | None = SA_AGE_CAP,
    log: StepLog | None = None,
) -> pd.DataFrame:
    """Add scale, age, roa, rdebt, invint, sa, fic; drops firm-years whose total assets or founding year make them undefined.

    scale = ln(total assets, thousand RMB) (or ln employment); age = ln(year − founding + 1);
    roa = profit / total assets; rdebt = liabilities / total assets; invint = inventory /
    total assets (or / sales); fic = ln|SA| with SA's Age = year − founding in years.
    """
    no_assets = ~(accounts["total_assets"] > 0)
    accounts = drop_rows(accounts, no_assets, "assets_nonpositive", "total assets missing or <= 0", log)
    founding, year = accounts["founding_year"], accounts["year"]
    accounts = drop_rows(accounts, ~((founding >= FIRST_FOUNDING_YEAR) & (founding <= year)), "founding_year",
                         f"founding year missing, before {FIRST_FOUNDING_YEAR} or after the observation year", log)
    assets = accounts["total_assets"]
    _check_sa_units(assets, assets_to_million)
    years = accounts["year"] - accounts["founding_year"]
    sa = sa_index(assets, years, assets_to_million=assets_to_million, size_cap=size_cap, age_cap=age_cap)
    return accounts.assign(
        scale=np.log(assets if size == "assets" else accounts["employment"]),
        age=np.log(years + 1),
        roa=accounts["profit"] / assets,
        rdebt=accounts["liabilities"] / assets,
        invint=accounts["inventory"] / (assets if inventory_base == "assets" else accounts["sales"]),
        sa=sa,
        fic=np.log(sa.abs()),
    )


def _check_sa_units(assets: pd.Series, assets_to_million: float) -> None:
    """The median ASIF firm holds tens of RMB millions; a median above the SA cap means a unit error."""
    median_million = float(np.nanmedian(assets)) / assets_to_million
    if median_million > np.exp(SA_SIZE_CAP):
        raise DataValidationError(
            f"firm accounts: median total assets = RMB {median_million:,.0f} million, above the SA index's "
            f"RMB 4,500 million cap, so SA would be constant in size. Fix: total_assets must be in thousand RMB "
            f"(the ASIF unit); otherwise set assets_to_million to the number of your units per RMB million.")


def build_controls(
    accounts: pd.DataFrame, *, clean: bool = True, file: str = "firm accounts", **options
) -> tuple[pd.DataFrame, StepLog]:
    """Validate, clean (§1.4 step 10) and add the controls; returns the firm-year table and the step log.

    `options` go to `firm_controls`.
    """
    validate(accounts, ACCOUNTS, file)
    log: StepLog = []
    if clean:
        accounts = clean_accounts(accounts, log=log)
    return firm_controls(accounts, log=log, **options).reset_index(drop=True), log
