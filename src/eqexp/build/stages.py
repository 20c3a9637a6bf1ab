"""One build stage per measure: the measure's module run with the chosen options, returning its table and steps."""

from __future__ import annotations

import pandas as pd

from eqexp.build.options import BuildOptions
from eqexp.data.sources import Sources
from eqexp.data.validate import DataValidationError, require_columns
from eqexp.measures import classify, controls, integration, mediators, quality, spillover
from eqexp.steps import Step, StepLog


def info(step: str, rows: int, reason: str) -> Step:
    """A step that drops nothing and says what was done."""
    return Step(step, rows, rows, reason=reason)


def sigma_of(sources: Sources, opts: BuildOptions) -> float | dict[str, float]:
    if opts.sigma != "table":
        return float(opts.sigma)
    table = sources.sigma
    if table is None:
        raise DataValidationError(
            "data.build.sigma = 'table' needs a sigma file (hs3 or hs6, sigma: Broda–Weinstein elasticities) in the raw "
            "sources folder. Add sigma.csv, or choose a constant elasticity with data.build.sigma=5 (or 10).")
    code = "hs3" if "hs3" in table.columns else "hs6"
    require_columns(table, [code, "sigma"], "sigma")
    codes = quality.hs6_text(table[code]) if code == "hs6" else _zfill(table[code], 3)
    return dict(zip(codes, pd.to_numeric(table["sigma"], errors="coerce")))


def _zfill(codes: pd.Series, width: int) -> pd.Series:
    if pd.api.types.is_numeric_dtype(codes):
        codes = codes.astype("Int64")
    return codes.astype("string").str.strip().str.zfill(width)


def spillover_columns(panel: pd.DataFrame, records: pd.DataFrame, accounts: pd.DataFrame,
                      opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    """Spillover measures from the customs records of matched exporters (firm_id: their firm) and the cleaned
    accounts, merged on the panel's firm-years, plus size_large (ln assets above the CIC4-year median) and
    the density interactions (methods §7)."""
    acc = accounts[["firm_id", "year", "industry", "city"]].astype({"year": "int64"})
    table, steps = spillover.spillover_measures(
        records, acc, lag=opts.spill_lag, scope=tuple(opts.spill_scope), peer_scale=opts.peer_scale,
        peer_diversity=opts.peer_diversity, density=opts.spill_density, dest_weights=opts.dest_weights,
        alone=opts.spill_alone, trade_modes=opts.trade_modes)
    out = panel.merge(table, on=["firm_id", "year"], how="left", validate="one_to_one")
    median = out.groupby(["industry", "year"])["scale"].transform("median")
    out["size_large"] = (out["scale"] > median).astype("int64")
    for x in ("spill_scale", "spill_div"):  # centred at the panel means, so the main terms keep their meaning
        out[f"{x}_x_dens"] = (out[x] - out[x].mean()) * (out["density_ind"] - out["density_ind"].mean())
    steps.append(info("spillover_columns", len(out), f"{len(table.columns) - 2} measures (lag {opts.spill_lag}, scope "
                       f"{', '.join(opts.spill_scope)}, scale {opts.peer_scale}, diversity {opts.peer_diversity}); "
                       f"{int(out['spill_scale'].isna().sum())} firm-year(s) without year t-{opts.spill_lag} peers data"))
    return out, steps


def market_panel(price_index: pd.DataFrame, opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    """Province-year market integration and its lags, built on the province-year panel (§6.3)."""
    mi, steps = integration.market_integration(
        price_index, pairs=opts.pairs, transform=opts.transform, min_categories=opts.min_categories,
        exclude=tuple(opts.exclude_provinces), file="price_index")
    mi = mi.assign(province=mi["province"].astype("int64"), year=mi["year"].astype("int64"))
    mi = integration.province_year_lags(mi, ks=tuple(opts.market_lags))
    steps.append(info("province_year_market", len(mi), f"{opts.pairs} pairs, {opts.transform}, lags "
                       f"{', '.join(f'L{k}' for k in opts.market_lags) or 'none'} on the province-year panel"))
    return mi, steps


def accounts_controls(accounts: pd.DataFrame, opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    """Controls from the cleaned accounts, and SOE status on all of a firm's (cleaned) accounts years."""
    out, steps = controls.build_controls(
        accounts, clean=opts.clean_accounts, file="accounts", size=opts.size, inventory_base=opts.inventory_base,
        assets_to_million=opts.assets_to_million)
    out = out.assign(soe=classify.soe(out, opts.soe_status))
    steps.append(info("soe", len(out), f"registration type in {classify.SOE_CODES}, status {opts.soe_status}"))
    return out, steps


def rd_cells(industry_rd: pd.DataFrame, opts: BuildOptions) -> tuple[pd.DataFrame, list[str]]:
    """R&D intensity by CIC2 × year, or by CIC2 × province × year when the file has provinces."""
    if "province" not in industry_rd.columns:
        return mediators.rd_intensity(industry_rd, opts.rd, file="industry_rd"), ["cic2", "year"]
    parts = []
    for province, rows in industry_rd.groupby(classify.province_code(industry_rd["province"]), sort=True):
        part = mediators.rd_intensity(rows.drop(columns="province"), opts.rd, file=f"industry_rd (province {province})")
        parts.append(part.assign(province=int(province)))
    rd = pd.concat(parts, ignore_index=True)
    return rd[["cic2", "province", "year", "rd"]], ["cic2", "province", "year"]
