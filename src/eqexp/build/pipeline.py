"""Raw sources → measures → the analysis panel, with a log of every row dropped.

    price_index ─relative-price method, lags on the province-year panel─▶ market ┐
    accounts ─ASIF cleaning, controls, SOE (registration type)───────────────────┼─merge on firm-year─┐
    customs ──clean, KSW residual, min–max, value weights──▶ firm-year quality ─┘                     │
    education ─▶ humancapital (province-year);  industry_rd ─▶ rd (CIC2 [× province] × year) ─────────┤
    region (province), factor intensity (CIC2) ─────────────────────────────────────────────────────┘
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

from eqexp.build import stages
from eqexp.build.merge import merge
from eqexp.build.options import BuildOptions
from eqexp.build.stages import info
from eqexp.data.sources import Sources
from eqexp.measures import mediators
from eqexp.steps import Step, StepLog


@dataclass(eq=False)
class Built:
    """The analysis panel and everything the build knows about it."""

    panel: pd.DataFrame
    log: list[dict]
    options: BuildOptions
    province_year: pd.DataFrame  # province, year, seg, n_partners, market, L{k}_market, humancapital
    firm_quality: pd.DataFrame  # firm_id, year, quality, export_value, n_flows (all measured exporters)
    seconds: dict[str, float] = field(default_factory=dict)


def build_panel(sources: Sources, options: BuildOptions | dict | None = None) -> tuple[pd.DataFrame, list[dict]]:
    """The analysis panel (columns PANEL_COLUMNS, one row per firm-year) and the build log."""
    built = build(sources, options)
    return built.panel, built.log


def build(sources: Sources, options: BuildOptions | dict | None = None, progress: bool = False) -> Built:
    """Run every measure on `sources` in order and merge them into the analysis panel."""
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

    # The cheap measures first, so a bad file fails before the long quality step.
    province_year, steps = stages.market_panel(sources.price_index, opts)
    stage("integration", steps)
    accounts, steps = stages.accounts_controls(sources.accounts, opts)
    stage("controls", steps)
    hc = mediators.human_capital(sources.education, opts.humancapital, file="education")
    rd, rd_keys = stages.rd_cells(sources.industry_rd, opts)
    hc = hc.dropna(subset=["province"]).astype({"province": "int64", "year": "int64"})
    province_year = province_year.merge(hc[["province", "year", "humancapital"]], on=["province", "year"], how="left")
    stage("mediators", [info("human_capital", len(hc), f"province-years, transform {opts.humancapital}"),
                        info("rd_intensity", len(rd), f"{' × '.join(rd_keys)} cells, transform {opts.rd}")])
    fq, steps = stages.export_quality(sources, opts)
    stage("quality", steps)
    panel, steps = merge(fq, accounts, province_year, rd, rd_keys, opts)
    stage("merge", steps)
    if opts.spillover:
        panel, steps = stages.spillover_columns(panel, sources, accounts, opts)
        stage("spillover", steps)
    return Built(panel, log, opts, province_year, fq, seconds)


def log_frame(log: list[Step]) -> pd.DataFrame:
    """The build log as a table (stage, step, rows_in, dropped, reason, rows_out)."""
    return pd.DataFrame([s.as_dict() for s in log], columns=["stage", "step", "rows_in", "dropped", "reason", "rows_out"])
