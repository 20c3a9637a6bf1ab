"""Raw sources of the synthetic world, and the file layout users' own raw sources follow.

`generate_sources(world)` turns the latent world (`eqexp.data.synthetic.World`) into the
files a researcher actually receives, so that `eqexp.build` can measure every variable
from them and every step is checked against a known truth:

=============  ==========================================================================
file           one row per ... (columns)
=============  ==========================================================================
customs        export record: firm × HS6 × destination × year, some split in two
               "monthly" records (firm_id, firm_name, hs6, destination, year, trade_mode,
               unit, quantity, value_usd)
accounts       firm-year of the industrial-enterprise database, thousand RMB (firm_id,
               year, province, city, industry, registration_type, founding_year,
               employment, total_assets, liabilities, profit, inventory, sales,
               net_fixed_assets)
price_index    province × year × retail category, chain index, previous year = 100
               (province, year, category, index)
education      province-year shares of the employed by education level, in percent
               (province, year, and the nine levels of `measures.mediators.EDUCATION_YEARS`)
industry_rd    CIC2 industry × province × year, 10k RMB (industry, province, year,
               rd_expenditure, output)
sigma          Broda–Weinstein-style import elasticities by HS3 code (hs3, sigma); optional
destinations   destination, name, income_group (high / other); optional
=============  ==========================================================================

How each source is tied to the latent world
-------------------------------------------
- customs: CES demand (methods.md §1.1): ln q + σ_h ln p = (σ_h − 1) ln λ + α_h + α_ct with
  each flow's quality r = firm-year quality (the world's `quality`, i.e. the latent quality
  plus its firm-year shock) + a small flow deviation, and ln λ = K r / (σ_h − 1): a product's
  quality ladder is longer the less substitutable it is, so that (σ_h − 1) ln λ = K r has
  the same scale in every product. Prices rise with quality (ψ) plus cost noise. Each
  product's ladder spans [0, 1]: exporters outside the accounts (unmatched in the merge)
  fill it, and the product's bottom and top rungs (r = 0 and 1) are held by two of them in
  the same destination-year, so the within-product min–max normalisation maps flow quality
  back onto the world's scale (slope 1) and the firm-year TQ tracks the world's quality up
  to a year effect (the destination-year fixed effects remove year means; the panel's year
  fixed effects absorb them). σ_h is the table's HS3 value, or the table's HS2 mean where
  the HS3 code is missing, so the default (table) variant is well specified and the
  constant-σ variants (5, 10) are not.
  Noise for the cleaning to remove: trade intermediaries (names with 进出口, 贸易, 经贸,
  科贸, 外经), zero values or quantities, a missing destination, records in an odd unit,
  unit-value outliers (quantity ×/÷ 100), agricultural chapters; every world firm-year has
  at least two flows, so it survives cleaning unless all its flows are trimmed.
- accounts: total assets = exp(scale), profit = roa × assets, liabilities = rdebt × assets,
  inventory = invint × assets, founding year from age: the controls built from them are
  the world's to rounding. Registration type from ownership (SOE codes 110, 141, 143, 151;
  some SOEs re-register as 159 later, so their initial status stays SOE). Non-exporting
  firms (unmatched in the merge) carry a few impossible rows for the ASIF cleaning.
- price_index: log chain indices are a category-year inflation plus province deviations
  calibrated, year by year, so that the relative-price method on all province pairs
  (the reference study's choice) returns the world's segmentation to rounding (Gauss–Newton
  on the 310 province × category deviations of each year). Other pair sets recover it
  approximately (rank correlation > 0.9).
- education: shares tilt a base distribution exponentially until the mean years of
  schooling equal exp(humancapital), so ln H reproduces the world's human capital.
- industry_rd: rd_expenditure = 10⁴ e^rd (10k RMB) and output = 100 rd_expenditure / rd,
  so both the "pct" (100 R&D / output) and the "ln_expenditure" transforms of
  `measures.mediators.rd_intensity` return the world's rd.

Users' raw files follow the same layout (see `read_sources`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eqexp.data.geography import PROVINCE_CODES, adjacent_pairs, provinces
from eqexp.data.synthetic import World, has_spillover
from eqexp.data.validate import DataValidationError
from eqexp.measures.mediators import EDUCATION_YEARS
from eqexp.measures.quality import assign_sigma

# --------------------------------------------------------------------------- constants

SOURCES_STREAM = 0x534F5552  # "SOUR": the sources' random streams, apart from the world's
SPILL_STREAM = 0x5350494C  # "SPIL": the exogenous-value draws (the reference world's draws stay as they were)

# The reference study's 10 retail-price categories (seeds/003 §3.1).
CATEGORIES: tuple[str, ...] = (
    "grain", "meat_poultry", "aquatic", "beverages_tobacco_alcohol", "clothing_shoes_hats",
    "textiles", "household_appliances_av", "cultural_office", "daily_necessities", "fuel",
)

# Destinations: ISO3 code, name, World Bank income group (high / other, held fixed), weight.
DESTINATIONS: tuple[tuple[str, str, str, float], ...] = (
    ("USA", "United States", "high", 20.0), ("HKG", "Hong Kong", "high", 12.0), ("JPN", "Japan", "high", 10.0),
    ("KOR", "Korea", "high", 5.0), ("DEU", "Germany", "high", 5.0), ("NLD", "Netherlands", "high", 4.0),
    ("GBR", "United Kingdom", "high", 4.0), ("SGP", "Singapore", "high", 2.0), ("TWN", "Taiwan", "high", 2.0),
    ("ITA", "Italy", "high", 2.0), ("FRA", "France", "high", 2.0), ("AUS", "Australia", "high", 2.0),
    ("CAN", "Canada", "high", 2.0), ("ESP", "Spain", "high", 1.2), ("BEL", "Belgium", "high", 1.0),
    ("ARE", "United Arab Emirates", "high", 1.5), ("SAU", "Saudi Arabia", "high", 1.0), ("POL", "Poland", "high", 0.6),
    ("CHL", "Chile", "high", 0.5), ("RUS", "Russia", "other", 2.0), ("IND", "India", "other", 2.0),
    ("BRA", "Brazil", "other", 1.5), ("MYS", "Malaysia", "other", 1.5), ("MEX", "Mexico", "other", 1.0),
    ("IDN", "Indonesia", "other", 1.0), ("THA", "Thailand", "other", 1.0), ("VNM", "Viet Nam", "other", 1.0),
    ("PHL", "Philippines", "other", 0.8), ("TUR", "Turkey", "other", 0.8), ("ZAF", "South Africa", "other", 0.7),
    ("NGA", "Nigeria", "other", 0.5), ("IRN", "Iran", "other", 0.5), ("PAK", "Pakistan", "other", 0.5),
    ("EGY", "Egypt", "other", 0.4), ("ARG", "Argentina", "other", 0.4), ("UKR", "Ukraine", "other", 0.4),
    ("KAZ", "Kazakhstan", "other", 0.4), ("BGD", "Bangladesh", "other", 0.4), ("COL", "Colombia", "other", 0.3),
    ("PER", "Peru", "other", 0.3),
)

# HS chapters each CIC2 industry exports. Food, beverages, tobacco and petroleum would
# naturally export chapters that methods §1.4 step 7 excludes; here they export
# manufactured by-products so every world firm-year keeps a measurable flow, and their
# agricultural exports appear as side flows the cleaning drops (AGRI_CHAPTERS).
CHAPTERS: dict[int, tuple[int, ...]] = {
    13: (29, 35, 38), 14: (33, 35), 15: (35, 38), 16: (48,), 17: (52, 54, 55, 58, 60, 63), 18: (61, 62),
    19: (42, 43, 64), 20: (44, 45, 46), 21: (94,), 22: (48,), 23: (49,), 24: (92, 95, 96), 25: (34, 38),
    26: (28, 29, 31, 32, 33, 34, 38), 27: (30,), 28: (54, 55), 29: (40,), 30: (39,), 31: (68, 69, 70),
    32: (72, 73), 33: (74, 75, 76, 78, 79, 81), 34: (73, 82, 83), 35: (84,), 36: (84,), 37: (86, 87, 88, 89),
    39: (85,), 40: (85,), 41: (90, 91), 42: (66, 67, 96),
}
AGRI_CHAPTERS = (2, 3, 7, 8, 9, 16, 20, 22)
# Customs quantity units (China customs unit codes): 035 kg, 011 件 pieces, 025 双 pairs,
# 001 台 sets, 007 个 units, 015 辆 vehicles; 036 g is the odd unit of the noise records.
UNIT_OF_CHAPTER = {61: "011", 62: "011", 64: "025", 84: "001", 85: "007", 90: "007", 91: "007", 87: "015"}
DEFAULT_UNIT, ODD_UNIT = "035", "036"

SOE_REGISTRATION = (110, 141, 143, 151)
SOE_REGISTRATION_WEIGHTS = (0.7, 0.1, 0.05, 0.15)
PRIVATE_REGISTRATION = (120, 130, 159, 160, 171, 172, 173, 174, 190, 210, 220, 230, 240, 310, 320, 330, 340)
REREGISTERED = 159  # 其他有限责任公司: what a re-registered SOE becomes

INTERMEDIARY_SUFFIXES = ("进出口有限公司", "贸易有限公司", "经贸有限公司", "科贸有限公司", "外经贸易公司")
MAKER_SUFFIXES = ("制造有限公司", "实业有限公司", "科技有限公司", "工业有限公司", "股份有限公司")

# Firm-id ranges of the firms that are not in the world's panel.
UNMATCHED_ID0, FRONTIER_ID0, INTERMEDIARY_ID0, NONEXPORTER_ID0 = 10_000_000, 15_000_000, 20_000_000, 30_000_000


@dataclass(frozen=True)
class SourceParams:
    """Knobs of the raw sources (YAML-friendly: `data.params.sources`)."""

    flows_extra_mean: float = 1.6  # flows per firm-year = 2 + Poisson(this)
    products_per_firm_max: int = 3
    flows_per_product: int = 1500  # sets the size of the HS6 catalogue
    min_flows_per_product: int = 160  # topped up by unmatched exporters: no product is thin
    quality_span: float = 4.0  # K: (σ_h − 1) ln λ = K r
    flow_quality_sd: float = 0.015  # a flow's quality deviation from its firm-year's
    price_quality: float = 0.15  # ψ: ln p rises with quality
    price_noise_sd: float = 0.06
    processing_discount: float = 0.9  # unit values of processing trade
    processing_firm_share: float = 0.3
    unmatched_share: float = 0.10  # flows of exporters outside the accounts, per matched flow
    intermediary_share: float = 0.02
    agri_share: float = 0.005
    split_share: float = 0.05  # flows reported as two "monthly" records
    zero_share: float = 0.001
    missing_share: float = 0.0005
    odd_unit_share: float = 0.002
    outlier_share: float = 0.5  # chance that a product (with 500+ flows) has a low and a high unit-value outlier
    sigma_missing_share: float = 0.1  # HS3 codes left out of the σ table (HS2-mean fallback)
    nonexporter_share: float = 0.05  # accounts rows of non-exporters, per matched firm-year
    bad_account_share: float = 0.02  # of the non-exporters' rows
    # Export values (see `_customs`). None: exogenous exactly when the world has an information
    # spillover (WorldParams.spill_scale / spill_div), so that peers' exports do not depend on quality.
    exogenous_values: bool | None = None
    value_size_loading: float = 0.8  # exogenous ln value: loading on the firm's ln assets (centred)
    value_industry_sd: float = 0.4  # ... plus a CIC4 × year AR(1) shock (ρ 0.5): variation in peers' scale
    value_noise_sd: float = 0.5  # ... plus flow noise
    explore_max: float = 0.4  # share of a CIC4-year's flows sent to any product of the CIC2, ~ U(0, this): peers' diversity

    @classmethod
    def of(cls, params: SourceParams | dict | None) -> SourceParams:
        if isinstance(params, SourceParams):
            return params
        params = dict(params or {})
        unknown = set(params) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown source parameter(s) {sorted(unknown)}; valid: {', '.join(f.name for f in fields(cls))}")
        return cls(**params)


FILES = ("customs", "accounts", "price_index", "education", "industry_rd", "sigma", "destinations")
OPTIONAL_FILES = ("sigma", "destinations")
READ_SUFFIXES = (".parquet", ".csv", ".dta")


@dataclass(frozen=True, eq=False)
class Sources:
    """The raw files of one world (or of a user's folder); see the module docstring."""

    customs: pd.DataFrame
    accounts: pd.DataFrame
    price_index: pd.DataFrame
    education: pd.DataFrame
    industry_rd: pd.DataFrame
    sigma: pd.DataFrame | None = None
    destinations: pd.DataFrame | None = None
    info: dict = field(default_factory=dict)  # how the synthetic sources were made (checks, counts)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in FILES if getattr(self, name) is not None}

    def write(self, directory: str | Path, format: str = "parquet") -> Path:
        """Write each table as `<name>.parquet` (or `.csv`) into `directory`: the layout `read_sources` reads."""
        if format not in ("parquet", "csv"):
            raise ValueError(f"format {format!r}: use parquet or csv")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            if format == "csv":
                df.to_csv(directory / f"{name}.csv", index=False)
            else:
                df.to_parquet(directory / f"{name}.parquet", index=False)
        return directory


# --------------------------------------------------------------------------- reading users' files


def source_files(directory: str | Path) -> dict[str, Path]:
    """The file of each source in `directory`: `<name>.parquet`, `.csv` or `.dta` (first found)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataValidationError(
            f"data.path '{directory}' is not a folder. For source: raw, point data.path at a folder holding "
            f"{', '.join(f'{n}.parquet|csv|dta' for n in FILES[:5])} (and optionally sigma, destinations).")
    found: dict[str, Path] = {}
    for name in FILES:
        for suffix in READ_SUFFIXES:
            path = directory / f"{name}{suffix}"
            if path.is_file():
                found[name] = path
                break
    missing = [n for n in FILES if n not in found and n not in OPTIONAL_FILES]
    if missing:
        present = sorted(p.name for p in directory.iterdir() if p.is_file())
        raise DataValidationError(
            f"{directory}: missing raw source file(s) {', '.join(missing)} (as .parquet, .csv or .dta). "
            f"Files found: {', '.join(present) or 'none'}. Name each file after its source, e.g. customs.csv.")
    return found


def read_sources(directory: str | Path, columns: dict[str, dict[str, str]] | None = None) -> Sources:
    """Read a folder of raw files laid out as the module docstring describes.

    Each source is `<name>.parquet`, `<name>.csv` or `<name>.dta` in `directory`:
    customs, accounts, price_index, education and industry_rd are required; sigma (hs3 or
    hs6, sigma) and destinations (destination, income_group) are optional. `columns` maps,
    per source, the file's column names to eqexp's, e.g.
    ``{"customs": {"party_id": "firm_id", "hs_code": "hs6"}, "accounts": {"id": "firm_id"}}``.
    Codes stored as numbers lose their leading zeros; HS codes are re-padded to six digits.
    Columns are checked (names, types, keys, impossible values) when the panel is built.
    """
    from eqexp.data.user import read_file

    columns = dict(columns or {})
    unknown = set(columns) - set(FILES)
    if unknown:
        raise DataValidationError(f"data.columns names unknown source(s) {sorted(unknown)}; the sources are {', '.join(FILES)}.")
    for name, mapping in columns.items():
        if not isinstance(mapping, dict):
            raise DataValidationError(
                f"data.columns.{name} must map the file's column names to eqexp's, e.g. {{party_id: firm_id}}; got {mapping!r}.")
    paths = source_files(directory)
    tables = {name: read_file(path, dict(columns.get(name, {}))) for name, path in paths.items()}
    return Sources(**tables, info={"files": {k: str(v) for k, v in paths.items()}})


# --------------------------------------------------------------------------- generation


def generate_sources(world: World, params: SourceParams | dict | None = None) -> Sources:
    """The raw sources of `world`; the same world and params always give the same sources."""
    p = SourceParams.of(params)
    wp = world.truth["params"]
    streams = np.random.SeedSequence([int(wp["seed"]), SOURCES_STREAM]).spawn(6)
    rng = [np.random.default_rng(s) for s in streams]
    years = np.arange(int(wp["first_year"]), int(wp["last_year"]) + 1)
    destinations = pd.DataFrame(DESTINATIONS, columns=["destination", "name", "income_group", "weight"])
    customs, sigma, cinfo = _customs(rng[0], world.panel, years, destinations, p, wp)
    accounts, ainfo = _accounts(rng[1], world.panel, years, p)
    price_index, pinfo = _price_index(rng[2], world.province_year)
    education = _education(rng[3], world.province_year)
    industry_rd = _industry_rd(world.rd_cells)
    info = {"params": asdict(p), "customs": cinfo, "accounts": ainfo, "price_index": pinfo}
    return Sources(customs, accounts, price_index, education, industry_rd, sigma,
                   destinations.drop(columns="weight"), info)


# ----- customs


def _catalogue(rng: np.random.Generator, fy_per_cic2: pd.Series, p: SourceParams) -> pd.DataFrame:
    """HS6 products per CIC2 industry (enough flows each) plus agricultural side products."""
    mean_flows = 2 + p.flows_extra_mean
    rows, used = [], set()

    def code(chapter: int) -> str:
        while True:
            c = f"{chapter:02d}{rng.integers(1, 90):02d}{rng.integers(10, 100):02d}"
            if c not in used:
                used.add(c)
                return c

    for cic2, n_fy in fy_per_cic2.items():
        n_products = max(1, int(round(n_fy * mean_flows / p.flows_per_product)))
        chapters = CHAPTERS[int(cic2)]
        for k in range(n_products):
            rows.append((code(chapters[k % len(chapters)]), int(cic2)))
    for chapter in AGRI_CHAPTERS:
        rows.append((code(chapter), 0))  # cic2 0: side products of the food industries
    cat = pd.DataFrame(rows, columns=["hs6", "cic2"])
    chapter = cat["hs6"].str[:2].astype(int)
    cat["unit"] = chapter.map(UNIT_OF_CHAPTER).fillna(DEFAULT_UNIT)
    cat["ln_price"] = rng.normal(np.log(8.0), 1.0, len(cat))  # product's unit-value level (USD)
    cat["ln_quantity"] = np.log(30_000.0) - cat["ln_price"] + rng.normal(0, 0.5, len(cat))  # median value ≈ 30k USD
    return cat


def _sigma_table(rng: np.random.Generator, hs6: pd.Series, p: SourceParams) -> tuple[pd.DataFrame, np.ndarray]:
    """A Broda–Weinstein-like table of σ by HS3 (some codes missing) and each product's true σ."""
    hs3 = np.sort(hs6.str[:3].unique())
    sigma = np.clip(1 + np.exp(rng.normal(np.log(2.5), 0.5, hs3.size)), 1.5, 15.0).round(3)
    keep = rng.random(hs3.size) >= p.sigma_missing_share
    table = pd.DataFrame({"hs3": hs3[keep], "sigma": sigma[keep]})
    truth = assign_sigma(hs6, dict(zip(table.hs3, table.sigma)), fallback=5.0)["sigma"].to_numpy()
    return table, truth


def _customs(
    rng: np.random.Generator, panel: pd.DataFrame, years: np.ndarray, destinations: pd.DataFrame, p: SourceParams,
    wp: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    wp = dict(wp or {})
    exogenous = p.exogenous_values if p.exogenous_values is not None else has_spillover(wp)
    xrng = np.random.default_rng([int(wp.get("seed", 0)), SPILL_STREAM])
    n_firms = int(panel.firm_id.max())
    cat = _catalogue(rng, panel.groupby("cic2").size(), p)
    sigma_table, sigma_true = _sigma_table(rng, cat["hs6"], p)
    n_prod = len(cat)
    manufactured = np.flatnonzero(cat.cic2.to_numpy() > 0)
    agri = np.flatnonzero(cat.cic2.to_numpy() == 0)

    # Each firm exports 1..3 products of its industry, the first ones more often.
    cic2_of_firm = np.zeros(n_firms + 1, dtype=np.int64)
    cic2_of_firm[panel.firm_id.to_numpy()] = panel.cic2.to_numpy()
    by_cic2 = cat.iloc[manufactured].groupby("cic2").indices
    start = np.zeros(100, dtype=np.int64)
    count = np.zeros(100, dtype=np.int64)
    for c, idx in by_cic2.items():
        start[c], count[c] = manufactured[idx[0]], len(idx)
    firm_cic2 = cic2_of_firm[1:]
    portfolio = start[firm_cic2][:, None] + np.floor(
        count[firm_cic2][:, None] * rng.random((n_firms, p.products_per_firm_max)) ** 2).astype(np.int64)
    n_portfolio = rng.integers(1, p.products_per_firm_max + 1, n_firms)
    processing_firm = rng.random(n_firms) < p.processing_firm_share

    # Matched flows: every world firm-year exports at least two.
    n_flows = 2 + rng.poisson(p.flows_extra_mean, len(panel))
    row = np.repeat(np.arange(len(panel)), n_flows)
    firm = panel.firm_id.to_numpy()[row]
    slot = np.floor(rng.random(row.size) * n_portfolio[firm - 1]).astype(np.int64)
    product = portfolio[firm - 1, slot]
    if exogenous:  # industry-years differ in how widely their exporters range over the CIC2's products
        product = _explore(xrng, product, panel, row, start, count, years, p)
    dest_w = destinations.weight.to_numpy() / destinations.weight.sum()
    dest = rng.choice(len(destinations), row.size, p=dest_w)
    second = np.flatnonzero(np.arange(row.size) - np.repeat(np.cumsum(n_flows) - n_flows, n_flows) == 1)
    dest[second] = (dest[second - 1] + rng.integers(1, len(destinations), second.size)) % len(destinations)  # ≠ the first
    year = panel.year.to_numpy()[row]
    r = np.clip(panel.quality.to_numpy()[row] + rng.normal(0, p.flow_quality_sd, row.size), 0.03, 0.97)
    mode = np.where(processing_firm[firm - 1] & (rng.random(row.size) < 0.6), np.where(rng.random(row.size) < 0.4, 1, 2), 0)
    matched = _dedupe(dict(firm=firm, product=product, dest=dest, year=year, r=r, mode=mode), n_prod, len(destinations))
    n_matched = matched["firm"].size

    # Exporters outside the accounts fill each product's ladder uniformly; every product gets
    # enough flows not to be thin, and its bottom and top rungs (frontier exporters, r = 0, 1).
    per_product = np.bincount(matched["product"], minlength=n_prod).astype(float)
    extra = np.maximum(p.unmatched_share * per_product, p.min_flows_per_product - per_product)
    extra[agri] = 0
    n_unmatched = int(round(extra.sum()))
    n_unmatched_firms = max(50, int(0.2 * n_firms))
    unmatched = _dedupe(dict(
        firm=UNMATCHED_ID0 + rng.integers(1, n_unmatched_firms + 1, n_unmatched),
        product=rng.choice(n_prod, n_unmatched, p=extra / extra.sum()),
        dest=rng.choice(len(destinations), n_unmatched, p=dest_w),
        year=rng.choice(years, n_unmatched),
        r=rng.uniform(0.05, 0.95, n_unmatched),
        mode=np.zeros(n_unmatched, dtype=np.int64)), n_prod, len(destinations))
    t0 = int(years[len(years) // 2])
    frontier = dict(
        firm=FRONTIER_ID0 + np.arange(2 * len(manufactured)),
        product=np.repeat(manufactured, 2),
        dest=np.zeros(2 * len(manufactured), dtype=np.int64),  # the largest destination
        year=np.full(2 * len(manufactured), t0),
        r=np.tile([0.0, 1.0], len(manufactured)),
        mode=np.zeros(2 * len(manufactured), dtype=np.int64))

    # Trade intermediaries, and agricultural side exports of food firms (both cleaned away).
    n_inter = int(round(p.intermediary_share * n_matched))
    n_inter_firms = max(10, int(0.01 * n_firms))
    inter = _dedupe(dict(
        firm=INTERMEDIARY_ID0 + rng.integers(1, n_inter_firms + 1, n_inter),
        product=rng.choice(manufactured, n_inter, p=per_product[manufactured] / per_product[manufactured].sum()),
        dest=rng.choice(len(destinations), n_inter, p=dest_w),
        year=rng.choice(years, n_inter),
        r=rng.uniform(0.05, 0.95, n_inter),
        mode=np.zeros(n_inter, dtype=np.int64)), n_prod, len(destinations))
    food = np.flatnonzero(panel.cic2.isin([13, 14, 15]).to_numpy())
    food = food if food.size else np.arange(len(panel))
    n_agri = max(len(agri) * p.min_flows_per_product, int(round(p.agri_share * n_matched)))
    agri_rows = rng.choice(food, n_agri)
    agri_flows = _dedupe(dict(
        firm=panel.firm_id.to_numpy()[agri_rows],
        product=rng.choice(agri, n_agri),
        dest=rng.choice(len(destinations), n_agri, p=dest_w),
        year=panel.year.to_numpy()[agri_rows],
        r=np.clip(panel.quality.to_numpy()[agri_rows], 0.03, 0.97),
        mode=np.zeros(n_agri, dtype=np.int64)), n_prod, len(destinations))

    parts = [matched, unmatched, frontier, inter, agri_flows]
    flows = {k: np.concatenate([part[k] for part in parts]) for k in matched}
    kind = np.repeat(np.arange(len(parts)), [part["firm"].size for part in parts])  # 2 = frontier
    n = flows["firm"].size

    # CES demand with product σ and destination-year demand shifters.
    sig = sigma_true[flows["product"]]
    shifter = (np.log(dest_w / dest_w.max())[:, None] * 0.3 + rng.normal(0, 0.2, (len(destinations), len(years)))).ravel()
    a_ct = shifter[flows["dest"] * len(years) + (flows["year"] - years[0])]
    noise = np.where(kind == 2, 0.0, rng.normal(0, p.price_noise_sd, n))
    ln_p_dev = p.price_quality * (flows["r"] - 0.5) + noise + np.where(flows["mode"] > 0, np.log(p.processing_discount), 0.0)
    ln_price = cat.ln_price.to_numpy()[flows["product"]] + ln_p_dev
    # y = ln q + σ ln p = (σ − 1) ln λ + α_h + α_ct with (σ − 1) ln λ = K r
    ln_q = cat.ln_quantity.to_numpy()[flows["product"]] + p.quality_span * (flows["r"] - 0.5) + a_ct - sig * ln_p_dev
    spill_info: dict = {}
    if exogenous:
        # Values first, from exogenous firm size, industry-year and flow shocks; the spillovers
        # (from year t−1 values) then shift flow quality; price and quantity are backed out so
        # that y = ln q + σ ln p = K r + α_h + α_ct holds exactly, as above.
        ln_v = (cat.ln_quantity.to_numpy() + cat.ln_price.to_numpy())[flows["product"]] + a_ct
        ln_v = ln_v + _value_shocks(xrng, flows, kind, panel, years, p)
        r, spill_info = _spillover_quality(flows, kind, panel, cat, destinations, np.exp(ln_v), wp)
        flows["r"] = r
        ln_p_dev = (p.quality_span * (flows["r"] - 0.5) - (ln_v - ln_v_base(cat, flows, a_ct))) / (sig - 1)
        ln_price = cat.ln_price.to_numpy()[flows["product"]] + ln_p_dev
        ln_q = ln_v - ln_price
    quantity = np.exp(ln_q)
    value = np.exp(ln_q + ln_price)
    units = sorted({*UNIT_OF_CHAPTER.values(), DEFAULT_UNIT, ODD_UNIT})
    unit = np.searchsorted(units, cat.unit.to_numpy().astype(str))[flows["product"]]
    dest_code = flows["dest"].copy()

    # Noise the cleaning must remove, on manufacturers' flows (not on the frontier rungs, nor
    # on flows another step removes anyway). Unit-value outliers: at most one each way per
    # product, and only where P1/P99 trimming drops several flows.
    eligible = np.flatnonzero(kind <= 1)
    pick = rng.permutation(eligible)
    counts = [int(round(s * n)) for s in (p.zero_share, p.missing_share, p.odd_unit_share)]
    zero, missing, odd = np.split(pick[: sum(counts)], np.cumsum(counts)[:-1])
    rest = pick[sum(counts):]
    rank = pd.Series(flows["product"][rest]).groupby(flows["product"][rest]).cumcount().to_numpy()
    thick = np.bincount(flows["product"], minlength=n_prod)[flows["product"][rest]] >= 500
    chosen = thick & (rank < 2) & (rng.random(rest.size) < p.outlier_share)
    outlier, outlier_low = rest[chosen], rank[chosen] == 0
    half = zero.size // 2
    value[zero[:half]] = 0.0
    quantity[zero[half:]] = 0.0
    dest_code[missing] = -1  # missing
    unit[odd] = units.index(ODD_UNIT)
    quantity[odd] *= 1000.0
    quantity[outlier] *= np.where(outlier_low, 100.0, 0.01)  # unit value ÷ or × 100

    # Some flows arrive as two records (months) that aggregation sums back.
    noisy = np.zeros(n, dtype=bool)
    noisy[np.concatenate([zero, missing, odd, outlier])] = True
    clean = np.flatnonzero(~noisy & (kind != 2))
    split = np.sort(rng.choice(clean, int(round(p.split_share * n)), replace=False))
    w = rng.uniform(0.2, 0.8, split.size)
    order = np.concatenate([np.arange(n), split])
    share = np.concatenate([np.ones(n), w])
    share[split] = 1 - w

    names, name_code = _firm_names(rng, panel, n_firms, n_unmatched_firms, 2 * len(manufactured), n_inter_firms)
    firm_ids = flows["firm"][order]
    customs = pd.DataFrame({
        "firm_id": firm_ids.astype(np.int64),
        "firm_name": pd.Categorical.from_codes(name_code(firm_ids), categories=names),
        "hs6": pd.Categorical.from_codes(flows["product"][order], categories=cat.hs6.to_numpy()),
        "destination": pd.Categorical.from_codes(dest_code[order], categories=destinations.destination.to_numpy()),
        "year": flows["year"][order].astype(np.int64),
        "trade_mode": pd.Categorical.from_codes(flows["mode"][order], categories=["10", "14", "15"]),
        "unit": pd.Categorical.from_codes(unit[order], categories=units),
        "quantity": quantity[order] * share,
        "value_usd": value[order] * share,
    })
    info = {
        "products": int(n_prod), "agricultural_products": int(len(agri)), "hs3_in_sigma_table": int(len(sigma_table)),
        "records": int(len(customs)), "flows": int(n), "matched_flows": int(n_matched), "unmatched_flows": int(unmatched["firm"].size),
        "frontier_flows": int(frontier["firm"].size), "intermediary_flows": int(inter["firm"].size),
        "agricultural_flows": int(agri_flows["firm"].size), "split_flows": int(split.size),
        "noise": {"zero": int(zero.size), "missing_destination": int(missing.size), "odd_unit": int(odd.size),
                  "unit_value_outlier": int(outlier.size)},
        "frontier_year": t0, "frontier_destination": str(destinations.destination.iloc[0]),
        "exogenous_values": bool(exogenous), "spillover": spill_info,
    }
    return customs, sigma_table, info


def ln_v_base(cat: pd.DataFrame, flows: dict[str, np.ndarray], a_ct: np.ndarray) -> np.ndarray:
    """The part of an exogenous ln value that the product and destination-year effects carry."""
    return (cat.ln_quantity.to_numpy() + cat.ln_price.to_numpy())[flows["product"]] + a_ct


def _explore(rng, product, panel, row, start, count, years, p: SourceParams) -> np.ndarray:
    """Send a CIC4-year share π ~ U(0, explore_max) of the firms' flows to any product of their CIC2."""
    industry = panel.industry.to_numpy()[row]
    codes, ind = np.unique(industry, return_inverse=True)
    t = panel.year.to_numpy()[row] - years[0]
    share = rng.uniform(0, p.explore_max, (codes.size, years.size))[ind, t]
    c2 = industry // 100
    hit = rng.random(row.size) < share
    out = product.copy()
    out[hit] = start[c2[hit]] + np.floor(count[c2[hit]] * rng.random(int(hit.sum()))).astype(np.int64)
    return out


def _value_shocks(rng, flows, kind, panel, years, p: SourceParams) -> np.ndarray:
    """Exogenous part of ln value: firm size (centred ln assets), a CIC4 × year AR(1) shock, flow noise."""
    from eqexp.data.world import ar1

    n = flows["firm"].size
    u = rng.normal(0, p.value_noise_sd, n)
    u[kind == 2] = 0.0  # the frontier rungs
    inside = np.flatnonzero(flows["firm"] < UNMATCHED_ID0)
    key = panel.firm_id.to_numpy() * 10_000 + panel.year.to_numpy()
    order = np.argsort(key)
    at = order[np.searchsorted(key[order], flows["firm"][inside] * 10_000 + flows["year"][inside])]
    scale = panel.scale.to_numpy()
    codes, ind = np.unique(panel.industry.to_numpy(), return_inverse=True)
    shock = ar1(rng, (codes.size, years.size), 0.5, p.value_industry_sd)
    u[inside] += p.value_size_loading * (scale[at] - scale.mean()) + shock[ind[at], panel.year.to_numpy()[at] - years[0]]
    return u


def _spillover_quality(flows, kind, panel, cat, destinations, value, wp: dict) -> tuple[np.ndarray, dict]:
    """Flow quality with the world's true information spillover (truth["spillover"]).

    S, D = spill_scale, spill_div of `eqexp.measures.spillover` (CIC4 peers, leave-one-out, t−1,
    all trade modes) on the manufacturers' flows of the accounts firms, centred at their CIC4 means
    over the firm-years where t−1 is observed (elsewhere the effect is 0). Each accounts firm's flow gets
    m_int · m_size · m_dest · (γ_scale S̃ + γ_div D̃).
    """
    from eqexp.measures.spillover import spillover_measures

    g_s, g_d = float(wp.get("spill_scale", 0.0)), float(wp.get("spill_div", 0.0))
    mult = dict(wp.get("spill_mult") or {})
    r = flows["r"].copy()
    if not (g_s or g_d):
        return r, {}
    own = np.flatnonzero((kind == 0) | (kind == 4))  # matched and agricultural side flows of accounts firms
    table = pd.DataFrame({"firm_id": flows["firm"][own].astype(np.int64),
                          "hs6": cat.hs6.to_numpy()[flows["product"][own]],
                          "destination": destinations.destination.to_numpy()[flows["dest"][own]],
                          "year": flows["year"][own].astype(np.int64), "value_usd": value[own]})
    acc = panel[["firm_id", "year", "industry", "city"]]
    spill, _ = spillover_measures(table, acc, lag=1, scope="industry")
    s, d = spill["spill_scale"].to_numpy(), spill["spill_div"].to_numpy()
    s_mean, d_mean = float(np.nanmean(s)), float(np.nanmean(d))
    # Centred within the CIC4 industry (a level per industry, which firm fixed effects absorb),
    # so that quality stays inside its [0, 1] ladder.
    ind = panel.industry.to_numpy()
    s = s - pd.Series(s).groupby(ind).transform("mean").to_numpy()
    d = d - pd.Series(d).groupby(ind).transform("mean").to_numpy()
    base = np.nan_to_num(g_s * s + g_d * d)
    scale = panel.scale.to_numpy()
    median = panel.groupby(["industry", "year"])["scale"].transform("median").to_numpy()
    firm_mult = (panel.factor_intensity.map(mult).to_numpy(float)
                 * np.where(scale > median, mult["large"], mult["small"]))
    key = panel.firm_id.to_numpy() * 10_000 + panel.year.to_numpy()
    order = np.argsort(key)
    at = order[np.searchsorted(key[order], flows["firm"][own] * 10_000 + flows["year"][own])]
    income = destinations.income_group.to_numpy()[flows["dest"][own]]
    effect = base[at] * firm_mult[at] * np.where(income == "high", mult["high"], mult["other"])
    r[own] = np.clip(r[own] + effect, 0.03, 0.97)
    info = {"spill_scale_mean": s_mean, "spill_div_mean": d_mean,
            "spill_scale_sd": float(np.nanstd(s)), "spill_div_sd": float(np.nanstd(d)),
            "effect_sd": float(effect.std()), "firm_years_without_lag": int(np.isnan(s).sum())}
    return r, info


def _dedupe(flows: dict[str, np.ndarray], n_prod: int, n_dest: int) -> dict[str, np.ndarray]:
    """One flow per firm × product × destination × year (the first drawn)."""
    key = ((flows["firm"].astype(np.int64) * n_prod + flows["product"]) * n_dest + flows["dest"]) * 100 + flows["year"] % 100
    keep = ~pd.Series(key).duplicated().to_numpy()
    return {k: v[keep] for k, v in flows.items()}


def _firm_names(rng, panel, n_firms, n_unmatched, n_frontier, n_inter):
    """Names of all exporters and a map from firm ids to their index in the names array."""
    zh = dict(zip(provinces().code, provinces().name_zh))
    prov = np.zeros(n_firms + 1, dtype=np.int64)
    prov[panel.firm_id.to_numpy()] = panel.province.to_numpy()
    maker = rng.integers(0, len(MAKER_SUFFIXES), n_firms + n_unmatched + n_frontier)
    names = [f"{zh[prov[i]]}{i:06d}{MAKER_SUFFIXES[maker[i - 1]]}" for i in range(1, n_firms + 1)]
    names += [f"外资{i:06d}{MAKER_SUFFIXES[maker[n_firms + i - 1]]}" for i in range(1, n_unmatched + 1)]
    names += [f"前沿{i:06d}{MAKER_SUFFIXES[maker[n_firms + n_unmatched + i]]}" for i in range(n_frontier)]
    inter = rng.integers(0, len(INTERMEDIARY_SUFFIXES), n_inter)
    names += [f"中国{i:05d}{INTERMEDIARY_SUFFIXES[inter[i - 1]]}" for i in range(1, n_inter + 1)]
    offsets = ((INTERMEDIARY_ID0, n_firms + n_unmatched + n_frontier - 1), (FRONTIER_ID0, n_firms + n_unmatched),
               (UNMATCHED_ID0, n_firms - 1), (0, -1))

    def code(ids: np.ndarray) -> np.ndarray:
        out = np.empty(ids.size, dtype=np.int64)
        done = np.zeros(ids.size, dtype=bool)
        for base, offset in offsets:
            hit = ~done & (ids >= base)
            out[hit] = ids[hit] - base + offset
            done |= hit
        return out

    return np.array(names, dtype=object), code


# ----- accounts


def _accounts(rng: np.random.Generator, panel: pd.DataFrame, years: np.ndarray, p: SourceParams) -> tuple[pd.DataFrame, dict]:
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
    info = {"exporter_rows": n, "nonexporter_rows": int(len(extra)),
            "bad_rows": int(extra.attrs.get("bad_rows", 0))}
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
    donor.attrs["bad_rows"] = int(bad.size)
    return donor


# ----- price indices


def _pair_structure(pairs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j) of n provinces, the signed incidence E (pair × province) and the mean over partners A."""
    incidence = np.zeros((len(pairs), n))
    incidence[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    incidence[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    ends = np.abs(incidence)
    return pairs, incidence, (ends / np.maximum(ends.sum(0), 1)).T


def _segmentation(x: np.ndarray, pairs, incidence, mean_over_partners, jacobian: bool = False):
    """The relative-price method on log chain-index deviations x (province × category):
    seg_i = mean over partners of Var_k(|Δ| − mean over pairs |Δ|), ddof = 1; and d seg / d x."""
    k = x.shape[1]
    d = x[pairs[:, 0]] - x[pairs[:, 1]]
    a = np.abs(d)
    q = a - a.mean(0)
    qc = q - q.mean(1, keepdims=True)
    seg = mean_over_partners @ ((qc**2).sum(1) / (k - 1))
    if not jacobian:
        return seg
    g = 2 * qc / (k - 1)  # d Var_p / d q_pk
    s = np.sign(d)
    gs = g * s
    direct = np.stack([(mean_over_partners * gs[:, j]) @ incidence for j in range(k)], axis=2)
    common = (mean_over_partners @ g)[:, None, :] * (incidence.T @ s)[None] / len(pairs)
    return seg, (direct - common).reshape(len(seg), -1)


def _levenberg_marquardt(x: np.ndarray, residual, n_iter: int, tol: float = 0.0) -> np.ndarray:
    """Minimum-norm Levenberg–Marquardt steps on residual(x) -> (r, J) (r None where undefined)."""
    mu = 1e-3
    for _ in range(n_iter):
        r, jac = residual(x, True)
        if np.abs(r).max() < tol:
            break
        current = float(r @ r)
        while mu < 1e10:
            step = -jac.T @ np.linalg.solve(jac @ jac.T + mu * np.eye(r.size), r)
            r_new = residual(x + step.reshape(x.shape), False)
            if r_new is not None and float(r_new @ r_new) < current:
                x, mu = x + step.reshape(x.shape), max(mu / 10, 1e-15)
                break
            mu *= 10
        else:
            break
    return x


def calibrate_deviations(
    seg: np.ndarray,
    rng: np.random.Generator,
    n_categories: int = len(CATEGORIES),
    secondary: np.ndarray | None = None,
    secondary_weight: float = 0.3,
    secondary_iter: int = 25,
    tol: float = 1e-13,
) -> tuple[np.ndarray, float]:
    """Province × category log deviations whose all-pairs segmentation equals `seg`.

    1. Start from independent standardised patterns scaled by the additive approximation
       seg_i ≈ c (v_i + mean_j v_j), c = 1 − 2/π, and solve the 31 equations in ln seg
       (310 unknowns) by Levenberg–Marquardt with minimum-norm steps.
    2. If `secondary` pairs are given (the adjacent pairs), move within the remaining
       freedom towards their segmentation matching `seg` as well (weighted least squares):
       exactness is impossible there when a segmented province has integrated neighbours
       (a neighbour's mean over few partners cannot be small), but the ranking is kept.
    3. Polish the all-pairs equations back to `tol` by Gauss–Newton.

    Returns (x, max |ln error| of the all-pairs segmentation).
    """
    from scipy.optimize import nnls  # only the generator needs it; keep `import eqexp.data.load` light

    n = seg.size
    main = _pair_structure(np.array(list(combinations(range(n), 2))), n)
    target = np.log(seg)
    c = 1 - 2 / np.pi
    v = nnls(c * (main[2] @ np.abs(main[1])), seg)[0]
    v = np.maximum(v, 0.1 * seg)
    z = rng.normal(size=(n, n_categories))
    z = (z - z.mean(1, keepdims=True)) / z.std(1, ddof=1, keepdims=True)
    x = np.sqrt(v)[:, None] * z

    def residual(structures, weights):
        def r(x, jacobian):
            parts = [_segmentation(x, *st, jacobian=jacobian) for st in structures]
            values = [pt[0] if jacobian else pt for pt in parts]
            if any((f <= 0).any() for f in values):
                return None
            res = np.concatenate([w * (np.log(f) - target) for w, f in zip(weights, values)])
            if not jacobian:
                return res
            return res, np.vstack([w * pt[1] / pt[0][:, None] for w, pt in zip(weights, parts)])
        return r

    x = _levenberg_marquardt(x, residual([main], [1.0]), 200, tol)
    if secondary is not None:
        x = _levenberg_marquardt(x, residual([main, _pair_structure(secondary, n)], [1.0, secondary_weight]),
                                 secondary_iter)
        x = _levenberg_marquardt(x, residual([main], [1.0]), 50, tol)
    error = float(np.abs(np.log(_segmentation(x, *main)) - target).max())
    return x, error


def _price_index(rng: np.random.Generator, province_year: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Chain indices (previous year = 100) of the 10 retail categories, 31 provinces, every world year."""
    years = np.sort(province_year.year.unique())
    seg = province_year.pivot(index="province", columns="year", values="seg").reindex(list(PROVINCE_CODES))
    k = len(CATEGORIES)
    inflation = rng.normal(0.02, 0.01, k)[:, None] + rng.normal(0, 0.025, (k, years.size))
    position = {code: i for i, code in enumerate(PROVINCE_CODES)}
    adjacent = np.array([(position[a], position[b]) for a, b in adjacent_pairs()])
    blocks, errors = [], []
    for t, year in enumerate(years):
        x, error = calibrate_deviations(seg[year].to_numpy(), rng, k, secondary=adjacent)
        errors.append(error)
        ln_index = np.log(100.0) + inflation[:, t][None, :] + x
        blocks.append(pd.DataFrame({
            "province": np.repeat(np.array(PROVINCE_CODES, dtype=np.int64), k),
            "year": int(year),
            "category": np.tile(np.array(CATEGORIES, dtype=object), len(PROVINCE_CODES)),
            "index": np.exp(ln_index).ravel(),
        }))
    info = {"calibrated_to": "all pairs (exact), adjacent pairs (closest)", "max_abs_log_seg_error": max(errors)}
    if max(errors) > 1e-8:
        raise RuntimeError(f"price-index calibration did not reproduce the segmentation (max |ln error| {max(errors):.2e})")
    return pd.concat(blocks, ignore_index=True), info


# ----- education and R&D


def _education(rng: np.random.Generator, province_year: pd.DataFrame) -> pd.DataFrame:
    """Shares (percent) of the nine education levels whose mean years of schooling are exp(humancapital)."""
    levels = list(EDUCATION_YEARS)
    years_of = np.array([EDUCATION_YEARS[k] for k in levels], dtype=float)
    base = np.array([5.0, 25.0, 42.0, 4.0, 12.0, 2.5, 5.5, 3.5, 0.5])
    n = len(province_year)
    prov_effect = rng.normal(0, 0.15, (len(PROVINCE_CODES), len(levels)))
    prov_idx = np.searchsorted(np.array(PROVINCE_CODES), province_year.province.to_numpy())
    ln_base = np.log(base)[None, :] + prov_effect[prov_idx] + rng.normal(0, 0.03, (n, len(levels)))
    target = np.exp(province_year.humancapital.to_numpy())
    theta = np.zeros(n)
    for _ in range(100):  # Newton on the exponential tilt: d mean / d θ = variance of years
        w = np.exp(ln_base + theta[:, None] * years_of[None, :] - (ln_base + theta[:, None] * years_of).max(1, keepdims=True))
        w /= w.sum(1, keepdims=True)
        mean = w @ years_of
        var = w @ years_of**2 - mean**2
        step = (target - mean) / var
        theta += step
        if np.abs(step).max() < 1e-15:
            break
    w = np.exp(ln_base + theta[:, None] * years_of[None, :] - (ln_base + theta[:, None] * years_of).max(1, keepdims=True))
    shares = 100 * w / w.sum(1, keepdims=True)
    out = pd.DataFrame(shares, columns=levels)
    out.insert(0, "year", province_year.year.to_numpy().astype(np.int64))
    out.insert(0, "province", province_year.province.to_numpy().astype(np.int64))
    return out


def _industry_rd(rd_cells: pd.DataFrame) -> pd.DataFrame:
    """R&D expenditure and output (10k RMB) by CIC2 × province × year, from the world's rd."""
    rd = rd_cells.rd.to_numpy()
    expenditure = 1e4 * np.exp(rd)
    return pd.DataFrame({
        "industry": rd_cells.cic2.to_numpy().astype(np.int64),
        "province": rd_cells.province.to_numpy().astype(np.int64),
        "year": rd_cells.year.to_numpy().astype(np.int64),
        "rd_expenditure": expenditure,
        "output": 100 * expenditure / rd,
    })


def describe(sources: Sources) -> dict[str, Any]:
    """Row counts of each table (for logs and benchmarks)."""
    return {name: int(len(df)) for name, df in sources.tables().items()}


def main(argv: list[str] | None = None) -> None:
    """Write the raw sources of a synthetic world to a folder, e.g. as a template for your own files:

        python -m eqexp.data.sources outputs/raw_small --n-firms 4000 --n-obs 24000 --format csv
    """
    import argparse

    from eqexp.data.synthetic import WorldParams, generate_world

    parser = argparse.ArgumentParser(prog="python -m eqexp.data.sources", description=main.__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--n-firms", type=int, default=4000)
    parser.add_argument("--n-obs", type=int, default=24000)
    parser.add_argument("--seed", type=int, default=WorldParams.seed)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    args = parser.parse_args(argv)
    world = generate_world(WorldParams(n_firms=args.n_firms, n_obs=args.n_obs, seed=args.seed))
    raw = generate_sources(world)
    out = raw.write(args.directory, args.format)
    print(f"[eqexp] raw sources written to {out}: " + ", ".join(f"{k} {v:,} rows" for k, v in describe(raw).items()))


if __name__ == "__main__":
    main()
