"""Raw sources → measures → the analysis panel, with a log of every row dropped.

    price_index ─relative-price method, lags on the province-year panel────────────────▶ market ┐
    accounts ─codes linked into firms (Brandt et al.)─▶ ASIF cleaning, controls, SOE───────────┤
    customs ─HS vintages → one─▶ clean, monthly records → yearly flows─▶ KSW, min–max─▶ flows    ├─merge on
       parties ─matched to ASIF codes (name, zip + telephone) → firms─▶ value weights─▶ TQ ─────┤ firm-year
    education ─▶ humancapital;  industry_rd ─▶ rd;  region (province), factor intensity (CIC2) ─┘
                                                          ▶ panel with the runner's columns (PANEL_COLUMNS)

Every measure comes from its own module in `eqexp.measures`; this module only runs them in
order (the cheap ones first, so that a bad file fails before the long quality step), merges
their results and records what each step did:
``{stage, step, rows_in, dropped, reason, rows_out}``. The variants of each measure are
`BuildOptions` (YAML: ``data.build``), whose defaults are the recommended choices of
methods.md and the reference study; `Built.options` records the choice of every run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import pandas as pd

from eqexp.build import asif, customs, stages
from eqexp.build import exporters as exporters_stage
from eqexp.build.merge import merge, province_vars
from eqexp.build.options import BuildOptions
from eqexp.build.stages import info
from eqexp.data.sources import Sources
from eqexp.data.validate import DataValidationError
from eqexp.measures import mediators
from eqexp.steps import Step, StepLog


@dataclass(eq=False)
class Built:
    """The analysis panel and everything the build knows about it."""

    panel: pd.DataFrame
    log: list[dict]
    options: BuildOptions
    province_year: pd.DataFrame  # province, year, seg, n_partners, market, L{k}_market, humancapital
    firm_quality: pd.DataFrame  # firm_id, year, quality, export_value, n_flows (matched exporters)
    seconds: dict[str, float] = field(default_factory=dict)
    match: pd.DataFrame | None = None  # party_id, year, firm_id (the ASIF code), step
    firm_of: pd.Series | None = None  # ASIF code → firm (its earliest linked code)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # match_rates, unmatched_exports, links


def build_panel(sources: Sources, options: BuildOptions | dict | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """The analysis panel (columns PANEL_COLUMNS, one row per firm-year) and the build log."""
    built = build(sources, options)
    return built.panel, built.log


def build(sources: Sources, options: BuildOptions | dict | None = None, progress: bool = False,
          memory_limit: str | None = None) -> Built:
    """Run every measure on `sources` in order and merge them into the analysis panel (the customs records on
    DuckDB under `memory_limit`, data.memory_limit; default `records_sql.DEFAULT_MEMORY_LIMIT`)."""
    opts = BuildOptions.of(options)
    log: list[dict] = []
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(name: str, steps: StepLog) -> None:
        nonlocal clock
        log.extend(replace(s, stage=name) for s in steps)
        seconds[name] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        if progress:
            print(f"[eqexp]   {name}: {seconds[name]:.1f}s", flush=True)

    if sources.info.get("read"):  # users' files: each file's rows and encoding, columns some files lack, codes derived
        stage("read", sources.info["read"])
    # Every customs-side file checked, then the cheap stages, so that a bad file fails before the long quality step.
    customs.check(sources, opts)
    if sources.province_vars is not None:
        province_vars(sources.province_vars)
    province_year, steps = stages.market_panel(sources.price_index, opts)
    stage("integration", steps)
    firm_of, links, steps = asif.link(sources.accounts, opts)
    stage("linking", steps)
    accounts, steps = asif.firm_years(sources.accounts, firm_of, opts)
    stage("controls", steps)
    province_year, rd, rd_keys, steps = _mediators(sources, province_year, opts)
    stage("mediators", steps)
    exporters, matched, rates, steps = exporters_stage.match(sources, firm_of, opts)
    stage("match", steps)
    records, kept, steps = customs.recoded(sources, opts)
    stage("customs", steps)
    if progress:  # the long stage: say what it works on before it starts
        print(f"[eqexp]   quality: {steps[-1].rows_out:,} customs records cleaned and summed on {opts.engine}, then KSW ...",
              flush=True)
    flows, steps = customs.quality_flows(records, kept, sources, opts, memory_limit)
    del records, kept  # the records' codes, converted: not needed by the later stages
    flows, unmatched = customs.to_firms(flows, exporters, steps)
    fq = customs.firm_quality(flows, sources, opts, steps)
    stage("quality", steps)
    panel, steps = merge(fq, accounts, province_year, rd, rd_keys, opts, sources.province_vars)
    stage("merge", steps)
    if panel.empty:
        raise DataValidationError(_why_empty(log))
    if opts.spillover:
        peers, steps = customs.peer_records(sources, exporters, opts)
        panel, spill_steps = stages.spillover_columns(panel, peers, accounts, opts)
        stage("spillover", steps + spill_steps)
    tables = {"match_rates": rates, "unmatched_exports": unmatched, "links": links}
    return Built(panel, log, opts, province_year, fq, seconds, matched, firm_of, tables)


def _mediators(sources: Sources, province_year: pd.DataFrame, opts: BuildOptions):
    """Human capital on the province-year panel; R&D intensity by CIC2 (× province) × year."""
    hc = mediators.human_capital(sources.education, opts.humancapital, file="education")
    rd, rd_keys = stages.rd_cells(sources.industry_rd, opts)
    hc = hc.dropna(subset=["province"]).astype({"province": "int64", "year": "int64"})
    province_year = province_year.merge(hc[["province", "year", "humancapital"]], on=["province", "year"], how="left")
    steps = [info("human_capital", len(hc), f"province-years, transform {opts.humancapital}"),
             info("rd_intensity", len(rd), f"{' × '.join(rd_keys)} cells, transform {opts.rd}")]
    return province_year, rd, rd_keys, steps


def _why_empty(log: list[Step]) -> str:
    first = next(s for s in log if s.rows_in and not s.rows_out)
    return (f"The built panel is empty: step '{first.step}' ({first.stage}) left no rows: {first.reason}. If the customs "
            "are keyed by firm_id, those ids must be the ASIF's (firm_id in accounts); the customs' own codes go in "
            "party_id, matched by name and telephone (data.columns: {customs: {your_code_column: party_id}}).")


def log_frame(log: list[Step]) -> pd.DataFrame:
    """The build log as a table (stage, step, rows_in, dropped, reason, rows_out)."""
    return pd.DataFrame([s.as_dict() for s in log], columns=["stage", "step", "rows_in", "dropped", "reason", "rows_out"])
