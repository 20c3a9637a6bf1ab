"""The customs stage: records keyed by their exporter, codes in one HS vintage, then flows with their quality.

    customs ─check─▶ records (firm_id = the customs party, or the ASIF id the file already has)
      ─HS vintages → target (hs_concordance)─▶ ─clean (§1.4), monthly records summed─▶ flows
      ─KSW residual, min–max─▶ flows with r_quality ─exporters → firms (the match)─▶ firm-year TQ
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.build.options import BuildOptions
from eqexp.build.stages import info, sigma_of
from eqexp.data.sources import Sources
from eqexp.data.validate import CUSTOMS, MATCH, RAUCH, DataValidationError, validate
from eqexp.measures import hs, quality
from eqexp.steps import StepLog, drop_rows


# What the cleaning, the quality and the spillovers read of a record (the match reads the file itself).
KEPT = ("firm_id", "firm_name", "hs6", "hs_vintage", "destination", "year", "trade_mode", "unit", "quantity", "value_usd")


def exporter_column(customs: pd.DataFrame) -> str:
    """party_id (the customs' own code, to be matched) or firm_id (the file is keyed by the ASIF id already)."""
    for column in ("party_id", "firm_id"):
        if column in customs.columns:
            return column
    raise DataValidationError(
        "customs: no exporter column. Name it party_id (the customs' 10-digit code, matched to the ASIF by name and "
        "telephone) or firm_id (the ASIF id, if your file is matched already); map yours with data.columns: "
        f"{{customs: {{your_column: party_id}}}}. Columns found: {', '.join(map(str, customs.columns))}.")


def keyed(customs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The customs with `firm_id` = the exporter (party codes as categorical text), and the column it came from."""
    key = exporter_column(customs)
    if key == "firm_id":
        return customs, key
    out = customs.drop(columns="firm_id", errors="ignore").rename(columns={key: "firm_id"})
    return out.assign(firm_id=exporter_codes(out["firm_id"])), key


def check(sources: Sources, opts: BuildOptions) -> None:
    """Named errors for the customs-side files (customs, hs_concordance, rauch, match) before any long work."""
    exporter_column(sources.customs)
    validate(sources.customs, CUSTOMS, "customs")
    if sources.hs_concordance is not None and opts.hs_convert:
        hs.check_table(sources.hs_concordance)
    if opts.rauch is not None:
        if sources.rauch is None:
            raise DataValidationError(f"data.build.rauch = {opts.rauch} needs the rauch file (hs6, con, lib: Rauch's 1999 "
                                      "classification by HS6 code of the target vintage) in the raw sources folder.")
        validate(sources.rauch, RAUCH, "rauch")
    if opts.match == "table" and sources.match is None:
        raise DataValidationError("data.build.match = table needs the match file (party_id, year, firm_id: your "
                                  "customs–ASIF match) in the raw sources folder; or use match: yu.")
    if sources.match is not None and opts.match in ("auto", "table"):
        validate(sources.match, MATCH, "match")


def records(sources: Sources, opts: BuildOptions, one_to_many: str | None = None) -> tuple[pd.DataFrame, StepLog]:
    """Customs records (checked by `check`) keyed by `firm_id` (the exporter), codes in the target vintage
    (one-to-many codes by `one_to_many`, else data.build.hs_one_to_many)."""
    out, kept, steps = recoded(sources, opts, one_to_many)
    return (out if kept is None else out[kept]), steps


def recoded(sources: Sources, opts: BuildOptions, one_to_many: str | None = None
            ) -> tuple[pd.DataFrame, np.ndarray | None, StepLog]:
    """`records` without copying them: every customs record, codes in the target vintage, and the records the HS
    conversion keeps (None: all)."""
    out, _ = keyed(sources.customs)
    out = out[[c for c in KEPT if c in out.columns]]
    steps: StepLog = []
    out = out.assign(hs6=quality.hs6_text(out["hs6"]))
    table = sources.hs_concordance
    if table is None or not opts.hs_convert:
        why = "no hs_concordance file" if table is None else "data.build.hs_convert is false"
        steps.append(info("hs_as_given", len(out), f"{why}: codes taken as they are, whatever their vintage"))
        return out, None, steps
    hs6, kept = hs.recode(out, hs.check_table(table), target=opts.hs_target,
                          one_to_many=one_to_many or opts.hs_one_to_many, log=steps)
    return out.assign(hs6=hs6), kept, steps


def quality_flows(records: pd.DataFrame, kept: np.ndarray | None, sources: Sources, opts: BuildOptions,
                  memory_limit: str | None = None) -> tuple[pd.DataFrame, StepLog]:
    """Cleaned firm × hs6 × destination × year flows with their r_quality from the records `kept` (None: all, as
    `recoded` gives them); the records are summed to flows on data.build.engine (DuckDB: under `memory_limit`,
    the records never copied)."""
    steps: StepLog = []
    rauch = sources.rauch if opts.rauch is not None else None
    if opts.engine == "duckdb":
        from eqexp.build import records_sql  # DuckDB (60 ms to import) only for the builds that use it

        flows = records_sql.clean_records(records, kept=kept, trade_modes=opts.trade_modes,
                                          intermediaries=opts.intermediaries, memory_limit=memory_limit, log=steps)
    else:
        flows = quality.clean_records(records if kept is None else records[kept], trade_modes=opts.trade_modes,
                                      intermediaries=opts.intermediaries, log=steps)
    clean = quality.clean_aggregated(
        flows, min_value=opts.min_value, min_quantity=opts.min_quantity, outlier_pct=tuple(opts.outlier_pct),
        outlier_by=opts.outlier_by, min_obs_per_product=opts.min_obs_per_product, chapters=opts.excluded_chapters,
        rauch=rauch, rauch_class=opts.rauch or "liberal", log=steps)
    flows = quality.flow_quality(clean, sigma=sigma_of(sources, opts), sigma_fallback=opts.sigma_fallback,
                                 divide_by_sigma=opts.divide_by_sigma, normalise_by=opts.normalise_by, log=steps)
    return flows, steps


def to_firms(flows: pd.DataFrame, exporters: pd.DataFrame, log: StepLog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Flows of matched exporters keyed by their firm (`exporters`: firm_id = exporter, year, panel_id), and the
    unmatched exports by year (flows, value, share of the year's value)."""
    at = flows[["firm_id", "year"]].merge(exporters, on=["firm_id", "year"], how="left")["panel_id"]
    unmatched = at.isna().to_numpy()
    value = flows["value_usd"].groupby(flows["year"]).sum()
    lost = flows.loc[unmatched].groupby("year")["value_usd"].agg(["size", "sum"]).reindex(value.index, fill_value=0)
    table = pd.DataFrame({"year": value.index, "flows": lost["size"].to_numpy(), "value_usd": lost["sum"].to_numpy(),
                          "value_share": (lost["sum"] / value).to_numpy()})
    share = lost["sum"].sum() / value.sum() if len(value) else 0.0
    out = drop_rows(flows.assign(firm_id=at.to_numpy()), unmatched, "unmatched_exports",
                    f"flows of exporters matched to no ASIF firm ({share:.1%} of the export value)", log)
    return out.astype({"firm_id": exporters["panel_id"].dtype}), table


def peer_records(sources: Sources, exporters: pd.DataFrame, opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    """The spillovers' peers' exports: records of matched exporters keyed by their firm, trade intermediaries out,
    products time-consistent (one-to-many codes as families in every year, so that product counts do not jump
    at an HS revision)."""
    out, steps = records(sources, opts, one_to_many="family")
    if opts.intermediaries:
        out = quality.drop_intermediaries(out, log=steps)
    return to_firms(out, exporters, steps)[0], steps


def firm_quality(flows: pd.DataFrame, sources: Sources, opts: BuildOptions, log: StepLog) -> pd.DataFrame:
    """Firm-year TQ (and over high-income / other destinations with data.build.quality_by_income)."""
    fq = quality.firm_year_quality(flows)
    log.append(info("firm_year_quality", len(fq), "value-weighted mean of r_quality per firm-year (TQ)"))
    if not opts.quality_by_income:
        return fq
    # One quality estimation, three value-weighted means (methods §7 heterogeneity).
    if sources.destinations is None or "income_group" not in sources.destinations.columns:
        raise DataValidationError("data.build.quality_by_income needs the destinations file (destination, income_group: "
                                  "high / other, World Bank classification) in the raw sources folder.")
    dest = sources.destinations.assign(destination=sources.destinations["destination"].astype(str))
    high_codes = set(dest.loc[dest["income_group"].astype(str).str.lower().eq("high"), "destination"])
    high = flows["destination"].astype(str).isin(high_codes).to_numpy()
    for name, rows in (("quality_high", high), ("quality_other", ~high)):
        part = quality.firm_year_quality(flows[rows])[["firm_id", "year", "quality"]].rename(columns={"quality": name})
        fq = fq.merge(part, on=["firm_id", "year"], how="left")
        log.append(info(name, len(part), f"TQ over the flows to {'high-income' if name == 'quality_high' else 'other'} "
                        "destinations (missing where the firm-year has none)"))
    return fq


def exporter_codes(codes: pd.Series) -> pd.Categorical:
    """Codes as text (integers read from a CSV lose nothing but their type), categorical: millions of repeats."""
    if pd.api.types.is_float_dtype(codes):
        codes = codes.astype("Int64")
    index, uniques = pd.factorize(codes)
    return quality.categorical(index, pd.Series(uniques).astype("string").str.strip())
