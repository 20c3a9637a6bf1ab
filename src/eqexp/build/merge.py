"""The analysis panel: measured exporters merged with their accounts, province-year and industry measures, classes."""

from __future__ import annotations

import pandas as pd

from eqexp.build.options import BuildOptions
from eqexp.build.stages import info
from eqexp.data.validate import DataValidationError, check_types, check_unique_keys, require_columns
from eqexp.measures import classify
from eqexp.steps import StepLog, record

PANEL_COLUMNS = (
    "firm_id", "year", "province", "city", "industry", "cic2", "region", "soe", "factor_intensity", "intensity2",
    "quality", "market", "scale", "age", "roa", "rdebt", "fic", "invint", "humancapital", "rd",
)
MANUFACTURING = (13, 43)  # CIC 2-digit range of manufacturing (methods §1.4 step 9)


def merge(fq: pd.DataFrame, accounts: pd.DataFrame, province_year: pd.DataFrame, rd: pd.DataFrame,
           rd_keys: list[str], opts: BuildOptions, province_vars: pd.DataFrame | None = None) -> tuple[pd.DataFrame, StepLog]:
    steps: StepLog = []
    keys = ["firm_id", "year"]
    accounts = accounts.assign(firm_id=firm_ids(accounts["firm_id"]), year=accounts["year"].astype("int64"))
    fq = fq.assign(firm_id=firm_ids(fq["firm_id"]), year=fq["year"].astype("int64"))
    extra = [c for c in ("quality_high", "quality_other") if c in fq.columns]
    panel = fq[[*keys, "quality", *extra]].merge(accounts, on=keys, how="inner", validate="one_to_one")
    record(steps, "merge_customs_accounts", len(fq), len(panel),
           "matched exporter firm-years with no accounts row left (the ASIF cleaning removed it)")
    record(steps, "accounts_without_exports", len(accounts), len(panel),
           "accounts firm-years with no measured export quality (non-exporters, or all flows cleaned away)")

    panel = panel.assign(province=classify.province_code(panel["province"]), cic2=classify.cic2(panel["industry"]))
    if opts.manufacturing_only:
        lo, hi = MANUFACTURING
        outside = ~panel["cic2"].between(lo, hi).fillna(False).astype(bool)
        panel = panel[~outside]
        record(steps, "manufacturing", len(outside), len(panel), f"CIC2 outside {lo}–{hi} (not manufacturing)")

    market_cols = ["province", "year", "market", "humancapital"]
    n = len(panel)
    panel = panel.merge(province_year[market_cols].astype({"province": "Int64"}), on=["province", "year"], how="left")
    no_market = panel["market"].isna()
    panel = panel[~no_market]
    record(steps, "market", n, len(panel), "no market integration for the firm's province-year")

    rd = rd.astype({k: "Int64" for k in rd_keys if k != "year"})
    panel = panel.merge(rd, on=rd_keys, how="left")
    for col in ("humancapital", "rd"):
        missing = int(panel[col].isna().sum())
        steps.append(info(f"missing_{col}", len(panel), f"{missing} firm-year(s) have no {col} (kept; the mediator "
                           "models drop them)"))

    panel = panel.assign(
        region=classify.region(panel["province"], opts.region_scheme),
        factor_intensity=classify.factor_intensity(panel["industry"], "three_way"),
        intensity2=classify.factor_intensity(panel["industry"], "two_way"),
        city=panel["city"] if "city" in panel.columns else pd.NA,
    )
    panel, more = add_province_vars(panel[list(PANEL_COLUMNS) + extra], province_vars)
    steps += more
    panel = _tidy(panel)
    steps.append(info("panel", len(panel), "firm-years with quality, accounts and market integration"))
    return panel, steps


def province_vars(table: pd.DataFrame) -> pd.DataFrame:
    """The user's province-year variables (an instrument, a policy), checked before any long work:
    province and year present and one row per pair, numbers that keep none of the panel's names."""
    require_columns(table, ["province", "year"], "province_vars")
    check_types(table, {"province": "code", "year": "integer"}, "province_vars")
    table = table.assign(province=classify.province_code(table["province"]), year=pd.to_numeric(table["year"]).astype("int64"))
    check_unique_keys(table, ["province", "year"], "province_vars")
    clash = [c for c in table.columns if c in (*PANEL_COLUMNS, "quality_high", "quality_other") and c not in ("province", "year")]
    if clash:
        raise DataValidationError(f"province_vars: {', '.join(clash)} would replace the panel's own column(s) of that name. "
                                  "Rename them in the file, or map them with data.columns: {province_vars: {theirs: ours}}.")
    check_types(table, {c: "numeric" for c in table.columns if c not in ("province", "year")}, "province_vars")
    return table


def add_province_vars(panel: pd.DataFrame, table: pd.DataFrame | None) -> tuple[pd.DataFrame, StepLog]:
    """`province_vars` merged by the firm's province and year; a firm-year without its province-year's row keeps a
    missing value, counted."""
    if table is None:
        return panel, []
    table = province_vars(table)
    variables = [c for c in table.columns if c not in ("province", "year")]
    merged = panel.merge(table, on=["province", "year"], how="left", validate="many_to_one")
    steps = [info(f"missing_{c}", len(merged), f"{int(merged[c].isna().sum())} firm-year(s) have no {c} in province_vars (kept, "
                  "missing)") for c in variables]
    return merged, steps


def _tidy(panel: pd.DataFrame) -> pd.DataFrame:
    """The world panel's dtypes where no value is missing (int64, str); nullable types otherwise."""
    out = {}
    for col in panel.columns:
        s = panel[col]
        if col in ("region", "factor_intensity", "intensity2"):
            out[col] = s.astype("str") if s.notna().all() else s
        elif col == "firm_id":
            out[col] = firm_ids(s)
        elif col in ("year", "province", "city", "industry", "cic2", "soe"):
            num = pd.to_numeric(s, errors="coerce")
            out[col] = num.astype("int64") if num.notna().all() else num.astype("Int64")
        else:
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
    return pd.DataFrame(out).sort_values(["firm_id", "year"], ignore_index=True)


def firm_ids(ids: pd.Series) -> pd.Series:
    """Firm ids as integers where they all are (the synthetic world's), else as text (legal-person codes like 60902712X)."""
    number = pd.to_numeric(ids, errors="coerce")
    return number.astype("int64") if number.notna().all() else ids.astype("string")
