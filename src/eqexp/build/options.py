"""The measures' variants (YAML: `data.build`), defaults the recommended choices of methods.md and the reference study."""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, fields
from typing import Any

from eqexp.data.validate import HS_VINTAGES
from eqexp.measures import integration, linking, mediators, quality, spillover


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
    # customs records (methods §1.4 steps 3, 5, 7, 9)
    hs_target: int = 2002  # the HS vintage every code is converted to (the hs_concordance file's to_hs6)
    hs_convert: bool = True  # with an hs_concordance file; false: codes of every vintage taken as they are
    # A code with several targets: drop its records | first (the first listed target) | family (its targets as one
    # product in every year). The spillovers always count products on families: time-consistent products.
    hs_one_to_many: str = "drop"
    excluded_chapters: tuple = tuple(sorted(quality.EXCLUDED_CHAPTERS))  # not manufactured goods (step 7)
    rauch: Any = None  # None | conservative | liberal: differentiated goods only (needs the rauch file)
    # where the customs records are cleaned and summed to flows: pandas (in memory) | duckdb (under data.memory_limit,
    # spilling); the same flows either way (build.records_sql). pandas by default until the records reach DuckDB
    # from the files: DuckDB does not lower the peak yet, and it was slower at 4x in every measured round.
    engine: str = "pandas"
    match: str = "auto"  # customs → ASIF: auto (the match file if given, else yu) | yu (name, then zip + phone) | name | table
    # the ASIF (methods §1.4 step 10)
    link_firms: bool = True  # link codes across years (Brandt et al. 2012); false: a code is a firm
    link_steps: tuple = linking.STEPS  # after the code: name, legal_person (+ city), phone (+ founding year, industry)
    # A code that ended in t is linked to one that starts in t + 1, ..., t + this. Brandt et al. look at t + 1 and
    # t + 2; firms missing longer (the 2008-10 threshold changes, the poor 2010 wave) need t + 3.
    link_max_gap: int = 3
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
        for name in ("outlier_pct", "exclude_provinces", "market_lags", "spill_scope", "link_steps"):
            if name in options and options[name] is not None:
                options[name] = tuple(options[name])
        if options.get("excluded_chapters") is not None:
            options["excluded_chapters"] = tuple(sorted(f"{int(c):02d}" for c in options["excluded_chapters"]))
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
            "hs_one_to_many": ("drop", "first", "family"), "rauch": (None, "conservative", "liberal"),
            "engine": ("duckdb", "pandas"),
            "match": ("auto", "yu", "name", "table"), "hs_target": HS_VINTAGES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"data.build.{name} = {getattr(self, name)!r}; use one of {', '.join(map(str, allowed))}.")
        if set(self.spill_scope) - set(spillover.SCOPES) or "industry" not in self.spill_scope:
            raise ValueError(f"data.build.spill_scope = {list(self.spill_scope)}; use some of {', '.join(spillover.SCOPES)}, "
                             "including industry (the headline spill_scale, spill_div).")
        if set(self.link_steps) - set(linking.STEPS):
            raise ValueError(f"data.build.link_steps = {list(self.link_steps)}; use some of {', '.join(linking.STEPS)}, "
                             "in the order they should run.")
        if isinstance(self.link_max_gap, bool) or not isinstance(self.link_max_gap, int) or self.link_max_gap < 1:
            raise ValueError(f"data.build.link_max_gap = {self.link_max_gap!r}; use a whole number >= 1 (years between a "
                             "code's last row and its successor's first).")
        if isinstance(self.spill_lag, bool) or not isinstance(self.spill_lag, int) or self.spill_lag < 0:
            raise ValueError(f"data.build.spill_lag = {self.spill_lag!r}; use a whole number >= 0 (1: last year's peers).")
        if not (self.sigma == "table" or (isinstance(self.sigma, float) and self.sigma > 1)):
            raise ValueError(f"data.build.sigma = {self.sigma!r}; use 'table' (Broda–Weinstein σ) or a constant above 1 (5, 10).")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (for cache keys, logs and MLflow params)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
