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

import difflib
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import pandas as pd

from eqexp.data.sources import Sources
from eqexp.data.validate import DataValidationError, StepLog, record, require_columns
from eqexp.measures import classify, controls, integration, mediators, quality, spillover
from eqexp.steps import Step

PANEL_COLUMNS = (
    "firm_id", "year", "province", "city", "industry", "cic2", "region", "soe", "factor_intensity", "intensity2",
    "quality", "market", "scale", "age", "roa", "rdebt", "fic", "invint", "humancapital", "rd",
)
MANUFACTURING = (13, 43)  # CIC 2-digit range of manufacturing (methods §1.4 step 9)


@dataclass(frozen=True)
class BuildOptions:
    """Variants of every measure (YAML: ``data.build.<name>``); defaults are methods.md's [R] choices."""

    # export quality (methods §1)
    sigma: Any = "table"  # "table": the sources' Broda–Weinstein σ by HS3/HS6 (variant A); or a constant (5, 10: variant C)
    sigma_fallback: float = 5.0  # σ where the table has neither the HS code nor its chapter
    divide_by_sigma: bool = True  # λ̂ = ε̂/(σ−1); r_quality is the same either way (σ constant within HS6)
    normalise_by: str = "hs6"  # min–max within product pooled over years | hs6_dest_year
    trade_modes: Any = None  # None: all; e.g. ["10"]: general trade only (§1.4 step 8)
    intermediaries: bool = True  # drop trade intermediaries by name (§1.4 step 2)
    min_value: float = 50.0
    min_quantity: float = 1.0
    outlier_pct: tuple = (1.0, 99.0)  # unit-value percentiles dropped
    outlier_by: str = "hs6"  # hs6 | hs6_year
    min_obs_per_product: int = 100
    # market integration (methods §2)
    pairs: str = "all"  # all | adjacent; the reference study pairs all provinces (seeds/003 §3.1)
    transform: str = "log_sqrt_inv"  # ln sqrt(1/seg): the study's "Market" scale; sqrt_inv | inv | neg | seg
    min_categories: int = 6
    exclude_provinces: tuple = ()  # e.g. [54]: Tibet, as the study's 435 pairs of 30 provinces
    market_lags: tuple = (1, 2, 3)  # province-year lags, built before merging (§6.3)
    # controls (methods §1.4 step 10, §8)
    clean_accounts: bool = True
    size: str = "assets"  # assets | employment
    inventory_base: str = "assets"  # assets | sales
    assets_to_million: float = 1000.0  # thousand RMB per RMB million (SA index)
    # mediators (seeds/003 §5.2.1)
    humancapital: str = "log"  # log | level
    rd: str = "pct"  # pct | ratio | permille | ln_ratio | ln_expenditure
    # classifications (methods §8)
    soe_status: str = "initial"  # initial | current
    region_scheme: str = "three_belt"  # three_belt | four_region
    manufacturing_only: bool = True  # keep CIC 13–43
    # information spillover (methods §7; eqexp.measures.spillover). Off by default: it adds
    # ~10 s and the spill_* columns to a full-size build, and only the spill* studies use it.
    spillover: bool = False  # add the spillover columns (and size_large, the interactions) to the panel
    spill_lag: int = 1  # peers' activity in year t − lag (0: contemporaneous)
    spill_scope: tuple = ("industry", "city", "city_industry", "cross")
    peer_scale: str = "total"  # headline spill_scale: total | dest | count | mean
    peer_diversity: str = "hs6"  # headline spill_div: hs6 | dest | pairs
    spill_density: str = "share"  # share | log_count
    dest_weights: str = "current"  # current | lagged
    spill_alone: str = "zero"  # zero | missing: a firm without peers
    quality_by_income: bool = False  # add quality_high / quality_other: TQ over flows to high-income / other destinations

    @classmethod
    def of(cls, options: BuildOptions | dict | None) -> BuildOptions:
        """Options from a mapping (e.g. ``data.build``); an unknown name fails with the nearest valid ones."""
        if isinstance(options, BuildOptions):
            return options
        options = dict(options or {})
        valid = [f.name for f in fields(cls)]
        for name in options:
            if name not in valid:
                near = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
                hint = f" Did you mean {', '.join(map(repr, near))}?" if near else ""
                raise ValueError(f"Unknown build option 'data.build.{name}'.{hint} Valid: {', '.join(valid)}.")
        for name in ("outlier_pct", "exclude_provinces", "market_lags", "spill_scope"):
            if name in options and options[name] is not None:
                options[name] = tuple(options[name])
        if options.get("trade_modes") is not None:
            options["trade_modes"] = tuple(str(m) for m in options["trade_modes"])
        if isinstance(options.get("sigma"), (int, float)) and not isinstance(options.get("sigma"), bool):
            options["sigma"] = float(options["sigma"])
        out = cls(**options)
        out._check()
        return out

    def _check(self) -> None:
        choices = {
            "normalise_by": ("hs6", "hs6_dest_year"), "outlier_by": ("hs6", "hs6_year"),
            "pairs": ("all", "adjacent"), "transform": tuple(integration.TRANSFORMS), "size": ("assets", "employment"),
            "inventory_base": ("assets", "sales"), "humancapital": ("log", "level"), "rd": tuple(mediators.RD_TRANSFORMS),
            "soe_status": ("initial", "current"), "region_scheme": ("three_belt", "four_region"),
            "peer_scale": spillover.PeerScale.__args__, "peer_diversity": spillover.ITEMS,
            "spill_density": ("share", "log_count"), "dest_weights": ("current", "lagged"), "spill_alone": ("zero", "missing"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"data.build.{name} = {getattr(self, name)!r}; use one of {', '.join(allowed)}.")
        if set(self.spill_scope) - set(spillover.SCOPES) or "industry" not in self.spill_scope:
            raise ValueError(f"data.build.spill_scope = {list(self.spill_scope)}; use some of {', '.join(spillover.SCOPES)}, "
                             "including industry (the headline spill_scale, spill_div).")
        if isinstance(self.spill_lag, bool) or not isinstance(self.spill_lag, int) or self.spill_lag < 0:
            raise ValueError(f"data.build.spill_lag = {self.spill_lag!r}; use a whole number >= 0 (1: last year's peers).")
        if not (self.sigma == "table" or (isinstance(self.sigma, float) and self.sigma > 1)):
            raise ValueError(f"data.build.sigma = {self.sigma!r}; use 'table' (Broda–Weinstein σ) or a constant above 1 (5, 10).")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (for cache keys, logs and MLflow params)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


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
    province_year, steps = market_panel(sources.price_index, opts)
    stage("integration", steps)
    accounts, steps = _controls(sources.accounts, opts)
    stage("controls", steps)
    hc = mediators.human_capital(sources.education, opts.humancapital, file="education")
    rd, rd_keys = _rd(sources.industry_rd, opts)
    hc = hc.dropna(subset=["province"]).astype({"province": "int64", "year": "int64"})
    province_year = province_year.merge(hc[["province", "year", "humancapital"]], on=["province", "year"], how="left")
    stage("mediators", [_info("human_capital", len(hc), f"province-years, transform {opts.humancapital}"),
                        _info("rd_intensity", len(rd), f"{' × '.join(rd_keys)} cells, transform {opts.rd}")])
    fq, steps = _quality(sources, opts)
    stage("quality", steps)
    panel, steps = _merge(fq, accounts, province_year, rd, rd_keys, opts)
    stage("merge", steps)
    if opts.spillover:
        panel, steps = _spillovers(panel, sources, accounts, opts)
        stage("spillover", steps)
    return Built(panel, log, opts, province_year, fq, seconds)


def _info(step: str, rows: int, reason: str) -> dict:
    return Step(step, rows, rows, reason=reason)


# --------------------------------------------------------------------------- measures


def _sigma(sources: Sources, opts: BuildOptions) -> float | dict[str, float]:
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


def _quality(sources: Sources, opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    if not opts.quality_by_income:
        fq, steps = quality.ksw_quality(
            sources.customs, sigma=_sigma(sources, opts), sigma_fallback=opts.sigma_fallback,
            divide_by_sigma=opts.divide_by_sigma, normalise_by=opts.normalise_by,
            min_obs_per_product=opts.min_obs_per_product, trade_modes=opts.trade_modes,
            intermediaries=opts.intermediaries, min_value=opts.min_value, min_quantity=opts.min_quantity,
            outlier_pct=tuple(opts.outlier_pct), outlier_by=opts.outlier_by)
        steps.append(_info("firm_year_quality", len(fq), "value-weighted mean of r_quality per firm-year (TQ)"))
        return fq, steps
    # The same steps as quality.ksw_quality, keeping the flows so that TQ can also be taken over
    # the flows to high-income destinations and to the rest (methods §7 heterogeneity): one
    # quality estimation, three value-weighted means.
    steps: StepLog = []
    clean = quality.clean_flows(
        sources.customs, trade_modes=opts.trade_modes, intermediaries=opts.intermediaries, min_value=opts.min_value,
        min_quantity=opts.min_quantity, outlier_pct=tuple(opts.outlier_pct), outlier_by=opts.outlier_by,
        min_obs_per_product=opts.min_obs_per_product, log=steps)
    flows = quality.flow_quality(clean, sigma=_sigma(sources, opts), sigma_fallback=opts.sigma_fallback,
                                 divide_by_sigma=opts.divide_by_sigma, normalise_by=opts.normalise_by, log=steps)
    fq = quality.firm_year_quality(flows)
    steps.append(_info("firm_year_quality", len(fq), "value-weighted mean of r_quality per firm-year (TQ)"))
    if sources.destinations is None or "income_group" not in sources.destinations.columns:
        raise DataValidationError("data.build.quality_by_income needs the destinations file (destination, income_group: "
                                  "high / other, World Bank classification) in the raw sources folder.")
    dest = sources.destinations.assign(destination=sources.destinations["destination"].astype(str))
    high_codes = set(dest.loc[dest["income_group"].astype(str).str.lower().eq("high"), "destination"])
    high = flows["destination"].astype(str).isin(high_codes).to_numpy()
    for name, rows in (("quality_high", high), ("quality_other", ~high)):
        part = quality.firm_year_quality(flows[rows])[["firm_id", "year", "quality"]].rename(columns={"quality": name})
        fq = fq.merge(part, on=["firm_id", "year"], how="left")
        steps.append(_info(name, len(part), f"TQ over the flows to {'high-income' if name == 'quality_high' else 'other'} "
                           "destinations (missing where the firm-year has none)"))
    return fq, steps


def _spillovers(panel: pd.DataFrame, sources: Sources, accounts: pd.DataFrame,
                opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    """Spillover measures from the raw flows and cleaned accounts, merged on the panel's firm-years, plus
    size_large (ln assets above the CIC4-year median) and the density interactions (methods §7)."""
    acc = accounts[["firm_id", "year", "industry", "city"]].astype({"firm_id": "int64", "year": "int64"})
    table, steps = spillover.spillover_measures(
        sources.customs, acc, lag=opts.spill_lag, scope=tuple(opts.spill_scope), peer_scale=opts.peer_scale,
        peer_diversity=opts.peer_diversity, density=opts.spill_density, dest_weights=opts.dest_weights,
        alone=opts.spill_alone, trade_modes=opts.trade_modes)
    out = panel.merge(table, on=["firm_id", "year"], how="left", validate="one_to_one")
    median = out.groupby(["industry", "year"])["scale"].transform("median")
    out["size_large"] = (out["scale"] > median).astype("int64")
    for x in ("spill_scale", "spill_div"):  # centred at the panel means, so the main terms keep their meaning
        out[f"{x}_x_dens"] = (out[x] - out[x].mean()) * (out["density_ind"] - out["density_ind"].mean())
    steps.append(_info("spillover_columns", len(out), f"{len(table.columns) - 2} measures (lag {opts.spill_lag}, scope "
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
    steps.append(_info("province_year_market", len(mi), f"{opts.pairs} pairs, {opts.transform}, lags "
                       f"{', '.join(f'L{k}' for k in opts.market_lags) or 'none'} on the province-year panel"))
    return mi, steps


def _controls(accounts: pd.DataFrame, opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    """Controls from the cleaned accounts, and SOE status on all of a firm's (cleaned) accounts years."""
    out, steps = controls.build_controls(
        accounts, clean=opts.clean_accounts, file="accounts", size=opts.size, inventory_base=opts.inventory_base,
        assets_to_million=opts.assets_to_million)
    out = out.assign(soe=classify.soe(out, opts.soe_status))
    steps.append(_info("soe", len(out), f"registration type in {classify.SOE_CODES}, status {opts.soe_status}"))
    return out, steps


def _rd(industry_rd: pd.DataFrame, opts: BuildOptions) -> tuple[pd.DataFrame, list[str]]:
    """R&D intensity by CIC2 × year, or by CIC2 × province × year when the file has provinces."""
    if "province" not in industry_rd.columns:
        return mediators.rd_intensity(industry_rd, opts.rd, file="industry_rd"), ["cic2", "year"]
    parts = []
    for province, rows in industry_rd.groupby(classify.province_code(industry_rd["province"]), sort=True):
        part = mediators.rd_intensity(rows.drop(columns="province"), opts.rd, file=f"industry_rd (province {province})")
        parts.append(part.assign(province=int(province)))
    rd = pd.concat(parts, ignore_index=True)
    return rd[["cic2", "province", "year", "rd"]], ["cic2", "province", "year"]


# --------------------------------------------------------------------------- merge


def _merge(fq: pd.DataFrame, accounts: pd.DataFrame, province_year: pd.DataFrame, rd: pd.DataFrame,
           rd_keys: list[str], opts: BuildOptions) -> tuple[pd.DataFrame, StepLog]:
    steps: StepLog = []
    keys = ["firm_id", "year"]
    accounts = accounts.assign(firm_id=accounts["firm_id"].astype("int64"), year=accounts["year"].astype("int64"))
    fq = fq.assign(firm_id=fq["firm_id"].astype("int64"), year=fq["year"].astype("int64"))
    extra = [c for c in ("quality_high", "quality_other") if c in fq.columns]
    panel = fq[[*keys, "quality", *extra]].merge(accounts, on=keys, how="inner", validate="one_to_one")
    record(steps, "merge_customs_accounts", len(fq), len(panel),
           "exporter firm-years with no accounts row (exporters outside the ASIF, or its cleaning)")
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
        steps.append(_info(f"missing_{col}", len(panel), f"{missing} firm-year(s) have no {col} (kept; the mediator "
                           "models drop them)"))

    panel = panel.assign(
        region=classify.region(panel["province"], opts.region_scheme),
        factor_intensity=classify.factor_intensity(panel["industry"], "three_way"),
        intensity2=classify.factor_intensity(panel["industry"], "two_way"),
        city=panel["city"] if "city" in panel.columns else pd.NA,
    )
    panel = _tidy(panel[list(PANEL_COLUMNS) + extra])
    steps.append(_info("panel", len(panel), "firm-years with quality, accounts and market integration"))
    return panel, steps


def _tidy(panel: pd.DataFrame) -> pd.DataFrame:
    """The world panel's dtypes where no value is missing (int64, str); nullable types otherwise."""
    out = {}
    for col in panel.columns:
        s = panel[col]
        if col in ("region", "factor_intensity", "intensity2"):
            out[col] = s.astype("str") if s.notna().all() else s
        elif col in ("firm_id", "year", "province", "city", "industry", "cic2", "soe"):
            num = pd.to_numeric(s, errors="coerce")
            out[col] = num.astype("int64") if num.notna().all() else num.astype("Int64")
        else:
            out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
    return pd.DataFrame(out).sort_values(["firm_id", "year"], ignore_index=True)


def log_frame(log: list[Step]) -> pd.DataFrame:
    """The build log as a table (stage, step, rows_in, dropped, reason, rows_out)."""
    return pd.DataFrame([s.as_dict() for s in log], columns=["stage", "step", "rows_in", "dropped", "reason", "rows_out"])
