"""The raw sources in the licensed layout, as a template for the files researchers receive.

- customs: one GB18030 CSV per year (`customs/customs_<year>.csv`), Chinese headers, the HS8 code
  stored as a number (02011000 reads as 2011000), the period as YYYYMM (年月);
- accounts (the ASIF): one Stata .dta per year (`asif/asif_<year>.dta`), Chinese variable names
  that change in `RENAMED_FROM` (法人代码 → 组织机构代码, 主营业务收入 → 营业收入), a value-labelled
  registration type, and 本年折旧 absent in `ABSENT_YEARS`;
- the other sources one file each, as in the one-file folder;
- `data.yaml`: the data config (data.files, data.columns) that reads them.

The same world written this way and as one file per source builds the same panel once the
columns absent from some years are missing in the one-file folder too (`with_absent_years`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from eqexp.data.sources import Sources

CUSTOMS_NAMES = {"party_id": "企业编码", "firm_id": "企业编码", "firm_name": "企业名称", "phone": "电话", "zip": "邮政编码",
                 "hs8": "商品编码", "year_month": "年月", "year": "年", "destination": "目的国", "trade_mode": "贸易方式",
                 "unit": "计量单位", "quantity": "数量", "value_usd": "美元"}
ASIF_NAMES = {"firm_id": "法人代码", "year": "年份", "firm_name": "企业名称", "legal_person": "法人代表", "zip": "邮政编码",
              "phone": "电话", "province": "省份代码", "city": "城市代码", "industry": "行业代码", "registration_type": "登记注册类型",
              "founding_year": "开业年份", "employment": "从业人数", "total_assets": "资产总计", "liabilities": "负债合计",
              "profit": "利润总额", "inventory": "存货", "sales": "主营业务收入", "net_fixed_assets": "固定资产净值",
              "output": "工业总产值", "current_assets": "流动资产合计", "accumulated_depreciation": "累计折旧",
              "current_depreciation": "本年折旧"}
RENAMED_FROM = 2008  # the year the ASIF's names below change
RENAMED = {"firm_id": "组织机构代码", "sales": "营业收入"}
ABSENT_YEARS = {"current_depreciation": (2008, 2009, 2010)}  # variables some years of the ASIF lack
REGISTRATION_LABELS = {110: "国有企业", 141: "国有联营企业", 143: "国有与集体联营企业", 151: "国有独资公司", 159: "其他有限责任公司",
                       160: "股份有限公司", 171: "私营独资企业", 173: "私营有限责任公司", 310: "中外合资经营企业"}


def write_licensed(sources: Sources, directory: str | Path, seed: int = 0) -> Path:
    """Write `sources` in the licensed layout into `directory`; returns the path of its data config (data.yaml)."""
    directory = Path(directory)
    (directory / "customs").mkdir(parents=True, exist_ok=True)
    (directory / "asif").mkdir(parents=True, exist_ok=True)
    customs, customs_names = licensed_customs(sources.customs, seed)
    for year, rows in customs.groupby(customs["年月"] // 100 if "年月" in customs else customs["年"], sort=True):
        rows.to_csv(directory / "customs" / f"customs_{year}.csv", index=False, encoding="gb18030")
    asif_names: dict[str, str] = {}
    for year, rows in sources.accounts.groupby("year", sort=True):
        asif, names = asif_year(rows, int(year))
        asif.to_stata(directory / "asif" / f"asif_{year}.dta", write_index=False, version=118, value_labels=_labels(rows))
        asif_names |= names
    for name, df in sources.tables().items():
        if name not in ("customs", "accounts"):
            df.to_csv(directory / f"{name}.csv", index=False)
    config = {"name": "licensed", "source": "raw", "path": str(directory),
              "files": {"customs": "customs/customs_*.csv", "accounts": "asif/asif_*.dta"},
              "columns": {"customs": customs_names, "accounts": asif_names},
              "id": "firm_id", "time": "year", "cache_dir": "${outputs}/cache"}
    path = directory / "data.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    return path


def licensed_customs(customs: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, dict[str, str]]:
    """Customs records with Chinese headers, HS8 codes as numbers (HS6 and two digits), YYYYMM periods; and the
    column map (theirs → ours)."""
    rng = np.random.default_rng(seed)
    hs8 = pd.to_numeric(customs["hs6"].astype(str)).to_numpy(np.int64) * 100 + rng.integers(0, 100, len(customs))
    out = customs.drop(columns=["hs6", "hs_vintage"], errors="ignore").assign(hs8=hs8)
    if "month" in out.columns:
        out = out.assign(year_month=out["year"].to_numpy(np.int64) * 100 + out["month"].to_numpy(np.int64))
        out = out.drop(columns=["year", "month"])
    keep = [c for c in CUSTOMS_NAMES if c in out.columns]
    return out[keep].rename(columns=CUSTOMS_NAMES), {CUSTOMS_NAMES[c]: c for c in keep}


def asif_year(accounts: pd.DataFrame, year: int) -> tuple[pd.DataFrame, dict[str, str]]:
    """One year of the ASIF under that year's names, text as text (categories would be written as value labels),
    without the variables that year lacks; and its column map (theirs → ours)."""
    names = ASIF_NAMES | (RENAMED if year >= RENAMED_FROM else {})
    keep = [c for c in names if c in accounts.columns and year not in ABSENT_YEARS.get(c, ())]
    out = accounts[keep]
    text = {c: out[c].astype(str) for c in keep if not pd.api.types.is_numeric_dtype(out[c]) or c == "firm_id"}
    return out.assign(**text).rename(columns=names), {names[c]: c for c in keep}


def _labels(accounts: pd.DataFrame) -> dict:
    codes = set(accounts["registration_type"].dropna().astype(int))
    return {ASIF_NAMES["registration_type"]: {c: REGISTRATION_LABELS.get(c, f"类型{c}") for c in sorted(codes)}}


def with_absent_years(sources: Sources) -> Sources:
    """The same sources with the ASIF variables of `ABSENT_YEARS` missing in those years (the one-file
    counterpart of the licensed layout)."""
    accounts = sources.accounts.copy()
    for column, years in ABSENT_YEARS.items():
        accounts.loc[accounts["year"].isin(years), column] = np.nan
    tables = {name: df for name, df in sources.tables().items()} | {"accounts": accounts}
    return Sources(**tables)
