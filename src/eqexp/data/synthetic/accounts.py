"""The accounts file: firm-years of the industrial-enterprise database (ASIF), thousand RMB.

total assets = exp(scale), profit = roa × assets, liabilities = rdebt × assets, inventory =
invint × assets, founding year from age: the controls built from them are the world's to
rounding. Registration type from ownership (SOE codes 110, 141, 143, 151; some SOEs
re-register as 159 later, so their initial status stays SOE). Non-exporting firms (unmatched
in the merge) carry impossible rows for the ASIF cleaning, one rule each (Cai & Liu 2009):
`accounting_columns` adds output, current assets and depreciation, consistent for every other
row, and breaks each remaining rule on its own non-exporter rows, so every rule's count is known.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.params import NONEXPORTER_ID0, SourceParams

SOE_REGISTRATION = (110, 141, 143, 151)
SOE_REGISTRATION_WEIGHTS = (0.7, 0.1, 0.05, 0.15)
PRIVATE_REGISTRATION = (120, 130, 159, 160, 171, 172, 173, 174, 190, 210, 220, 230, 240, 310, 320, 330, 340)
REREGISTERED = 159  # 其他有限责任公司: what a re-registered SOE becomes


def accounts(rng: np.random.Generator, panel: pd.DataFrame, years: np.ndarray, p: SourceParams) -> tuple[pd.DataFrame, dict]:
    """Firm accounts in thousand RMB whose ratios are the world's controls."""
    n = len(panel)
    assets = np.exp(panel.scale.to_numpy())
    capital = panel.factor_intensity.to_numpy() != "labour"
    founding = panel.year.to_numpy() - np.round(np.expm1(panel.age.to_numpy())).astype(np.int64)
    firm = panel.firm_id.to_numpy()
    n_firms = int(firm.max())

    soe = panel.soe.to_numpy() == 1
    reg_firm = rng.choice(PRIVATE_REGISTRATION, n_firms + 1)
    soe_code = rng.choice(SOE_REGISTRATION, n_firms + 1, p=SOE_REGISTRATION_WEIGHTS)
    reg = np.where(soe, soe_code[firm], reg_firm[firm])
    # A fifth of SOEs re-register as limited-liability companies after their first year.
    first_year = pd.Series(panel.year.to_numpy()).groupby(firm).transform("min").to_numpy()
    switch_year = first_year + rng.integers(1, 8, n_firms + 1)[firm]
    switches = rng.random(n_firms + 1)[firm] < 0.2
    reg = np.where(soe & switches & (panel.year.to_numpy() >= switch_year), REREGISTERED, reg)

    apw = np.exp(rng.normal(np.log(300.0) + 0.5 * capital, 0.4))  # thousand RMB of assets per worker
    table = pd.DataFrame({
        "firm_id": firm.astype(np.int64),
        "year": panel.year.to_numpy().astype(np.int64),
        "province": panel.province.to_numpy(),
        "city": panel.city.to_numpy(),
        "industry": panel.industry.to_numpy(),
        "registration_type": reg.astype(np.int64),
        "founding_year": founding,
        "employment": np.maximum(8, np.round(assets / apw)).astype(np.int64),
        "total_assets": assets,
        "liabilities": panel.rdebt.to_numpy() * assets,
        "profit": panel.roa.to_numpy() * assets,
        "inventory": panel.invint.to_numpy() * assets,
        "sales": assets * np.exp(rng.normal(np.log(1.2), 0.3, n)),
        "net_fixed_assets": assets * rng.beta(2 + 2 * capital, 4, n),
    })
    extra = _nonexporters(rng, table, years, p)
    info = {"exporter_rows": n, "nonexporter_rows": int(len(extra)), "bad_rows": int(extra.attrs.get("bad_rows", 0)),
            "zero_assets": int(extra.attrs.get("zero_assets", 0))}
    return pd.concat([table, extra], ignore_index=True), info


def _nonexporters(rng: np.random.Generator, exporters: pd.DataFrame, years: np.ndarray, p: SourceParams) -> pd.DataFrame:
    """Firm-years of non-exporting firms, resampled from the exporters' rows with new ids; a few impossible."""
    n = int(round(p.nonexporter_share * len(exporters)))
    if n == 0:
        return exporters.iloc[:0]
    donor = exporters.iloc[rng.integers(0, len(exporters), n)].reset_index(drop=True)
    donor["firm_id"] = NONEXPORTER_ID0 + np.arange(1, n + 1)
    donor["year"] = rng.choice(years, n)
    donor["founding_year"] = np.minimum(donor["founding_year"], donor["year"])
    bad = rng.permutation(n)[: int(round(p.bad_account_share * n))]
    kinds = np.array_split(bad, 3)
    donor.loc[kinds[0], "employment"] = rng.integers(1, 8, kinds[0].size)
    donor.loc[kinds[1], "total_assets"] = 0.0
    donor.loc[kinds[2], "founding_year"] = donor.loc[kinds[2], "year"] + rng.integers(1, 5, kinds[2].size)
    donor.attrs.update(bad_rows=int(bad.size), zero_assets=int(kinds[1].size))
    return donor


BROKEN_RULES = ("sales", "output", "net_fixed_assets", "current_assets", "fixed_above_total", "depreciation")


def accounting_columns(rng: np.random.Generator, accounts: pd.DataFrame, p: SourceParams) -> tuple[pd.DataFrame, dict]:
    """Output, current assets, accumulated and current depreciation; one more broken rule per kind of bad row."""
    n = len(accounts)
    assets, fixed = accounts["total_assets"].to_numpy(), accounts["net_fixed_assets"].to_numpy()
    current_dep = fixed * rng.uniform(0.05, 0.12, n)
    out = accounts.assign(
        output=accounts["sales"].to_numpy() * np.exp(rng.normal(0, 0.1, n)),
        current_assets=(assets - fixed) * rng.uniform(0.6, 0.95, n),
        accumulated_depreciation=current_dep * (1 + rng.gamma(2.0, 2.0, n)),
        current_depreciation=current_dep,
    )
    ok = (out["firm_id"].to_numpy() >= NONEXPORTER_ID0) & (out["employment"].to_numpy() >= 8) & (assets > 0) \
        & (out["founding_year"].to_numpy() <= out["year"].to_numpy())
    pool = rng.permutation(np.flatnonzero(ok))
    each = int(round(p.bad_account_share * (out["firm_id"].to_numpy() >= NONEXPORTER_ID0).sum() / 3))
    kinds = dict(zip(BROKEN_RULES, np.split(pool[: each * len(BROKEN_RULES)], len(BROKEN_RULES))))
    out.loc[kinds["sales"], "sales"] = 0.0
    out.loc[kinds["output"], "output"] = np.nan
    out.loc[kinds["net_fixed_assets"], "net_fixed_assets"] = 0.0
    out.loc[kinds["current_assets"], "current_assets"] = out.loc[kinds["current_assets"], "total_assets"] * 1.1
    out.loc[kinds["fixed_above_total"], "net_fixed_assets"] = out.loc[kinds["fixed_above_total"], "total_assets"] * 1.2
    dep = kinds["depreciation"]
    out.loc[dep, "accumulated_depreciation"] = out.loc[dep, "current_depreciation"] * 0.5
    return out, {kind: int(rows.size) for kind, rows in kinds.items()}
