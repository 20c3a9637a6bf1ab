"""The latent synthetic world: firms, their presence, provincial paths, accounts.

Everything here is a primitive that raw sources can later be generated from:
the province-year segmentation path (chain CPIs), schooling years (education
shares), CIC2×province×year R&D intensity (R&D and output), firm accounts
(total assets, profit, liabilities, inventory, founding year). The quality
equation and the observable panel live in `eqexp.data.synthetic.world`.

Calibration targets are the reference study's Table 2 (seeds/003); the
constants below are the result of matching them at the default size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from eqexp.data.geography import PROVINCE_CODES, provinces

# CIC2 (GB/T 4754-2002) → factor intensity (methods.md §8) and share of
# exporting firm-years (%), set so labour-intensive carries the study's
# 44.1 % (262,095 of 594,596; Table 9).
CIC2_TABLE: tuple[tuple[int, str, float], ...] = (
    (13, "labour", 2.5), (14, "labour", 1.8), (15, "labour", 0.5), (16, "capital", 0.05),
    (17, "labour", 7.5), (18, "labour", 6.5), (19, "labour", 3.5), (20, "labour", 1.2),
    (21, "labour", 1.6), (22, "labour", 1.0), (23, "labour", 0.8), (24, "labour", 3.0),
    (25, "capital", 0.3), (26, "capital", 6.0), (27, "technology", 2.0),
    (28, "capital", 0.8), (29, "labour", 1.2), (30, "labour", 3.5), (31, "labour", 3.0),
    (32, "capital", 1.2), (33, "capital", 1.5), (34, "labour", 4.5),
    (35, "capital", 10.0), (36, "capital", 5.0), (37, "technology", 5.0),
    (39, "technology", 10.0), (40, "technology", 11.0), (41, "technology", 3.0),
    (42, "labour", 2.0),
)
CIC2_CODES = np.array([c for c, _, _ in CIC2_TABLE], dtype=np.int64)
CIC2_SHARES = np.array([w for *_, w in CIC2_TABLE]) / sum(w for *_, w in CIC2_TABLE)
INTENSITY_OF: dict[int, str] = {c: k for c, k, _ in CIC2_TABLE}

# Presence: a firm is in the sample from its entry year for a geometric spell;
# afterwards random spell-years are removed (gaps, as when a firm falls below
# the ASIF threshold for a year) until exactly n_obs firm-years remain.
INCUMBENT_SHARE = 0.6   # firms already present in the first year
EXIT_HAZARD = 0.05       # yearly probability that a spell ends

# Segmentation path: market = ln sqrt(1/seg) = level + trend + AR(1) deviation,
# squashed into the study's observed band (3.165..4.732).
MARKET_LEVEL, MARKET_TREND = 4.08, 0.045
MARKET_PROVINCE_SD, MARKET_DEV_SD, MARKET_DEV_RHO = 0.25, 0.3, 0.5
MARKET_BAND = (3.15, 4.75)

# Sd of the mediators' own cell shocks (province-year for human capital,
# CIC2-province-year for R&D): the variation that identifies b_h and b_r.
HC_NOISE_SD, RD_NOISE_SD = 0.008, 0.03


@dataclass(frozen=True)
class Firms:
    """Time-invariant firm attributes, one entry per firm (index = firm_id - 1)."""

    province: np.ndarray
    city: np.ndarray
    industry: np.ndarray
    cic2: np.ndarray
    soe: np.ndarray
    pre_years: np.ndarray  # years from founding to the firm's first sample year
    entry: np.ndarray  # index of the first sample year of the firm's spell


@dataclass(frozen=True)
class Latent:
    """All primitives of one world. Province axes follow geography.PROVINCE_CODES,
    CIC2 axes CIC2_CODES, year axes the history years (from history_start)."""

    firms: Firms
    present: np.ndarray  # bool (firm, sample year)
    founding: np.ndarray  # founding year per firm
    market: np.ndarray  # (province, year) ln sqrt(1/seg)
    humancapital: np.ndarray  # (province, year) ln mean years of schooling
    rd: np.ndarray  # (cic2, province, year)
    accounts: dict[str, np.ndarray]  # ratios on the (firm, sample year) grid


def draw_latent(
    seed: np.random.SeedSequence,
    n_firms: int,
    n_obs: int,
    years: np.ndarray,
    hist: np.ndarray,
    period_break: int,
    a_h: float,
    a_r: float,
) -> Latent:
    """Draw every primitive from its own stream, so that changing one part (the
    panel size, say) leaves the others (the provincial paths) unchanged."""
    rng = [np.random.default_rng(s) for s in seed.spawn(6)]
    firms = draw_firms(rng[0], n_firms, years.size)
    present = draw_presence(rng[1], firms.entry, years.size, n_obs)
    founding = np.maximum(years[np.argmax(present, axis=1)] - firms.pre_years, 1949)
    market = draw_market(rng[2], hist, years[0])

    # Firm-years per (CIC2, province, history year) cell, and each cell's
    # region × period group: the weights and groups for orthogonalising.
    i, j = np.nonzero(present)
    c = np.searchsorted(CIC2_CODES, firms.cic2[i])
    p = np.searchsorted(PROVINCE_CODES, firms.province[i])
    counts = np.zeros((CIC2_CODES.size, len(PROVINCE_CODES), hist.size))
    np.add.at(counts, (c, p, j + years[0] - hist[0]), 1)
    region = provinces().region.to_numpy()
    group = np.char.add(region[:, None].astype(str), (hist >= period_break).astype(str)[None])

    humancapital = draw_schooling(rng[3], market, hist, years[0], a_h)
    humancapital += orthogonal_shock(rng[3], HC_NOISE_SD, market, counts.sum(0), group)
    rd = draw_rd(rng[4], market, hist, years[0], a_r)
    rd += orthogonal_shock(
        rng[4], RD_NOISE_SD, *np.broadcast_arrays(market, counts, group)
    )
    accounts = draw_accounts(rng[5], firms, years.size)
    return Latent(firms, present, founding, market, humancapital, rd, accounts)


def draw_firms(rng: np.random.Generator, n_firms: int, n_years: int) -> Firms:
    """Location, industry, ownership, age at first sample year, entry year."""
    geo = provinces()
    # Every province gets one firm so that all 31 appear at any size.
    prov_idx = np.r_[np.arange(len(geo)), rng.choice(len(geo), n_firms - len(geo), p=geo.weight)]
    prov_idx = rng.permutation(prov_idx)
    province = geo.code.to_numpy()[prov_idx]
    city = province * 100 + _skewed_index(rng, geo.n_cities.to_numpy()[prov_idx])

    cic2 = rng.choice(CIC2_CODES, n_firms, p=CIC2_SHARES)
    n_cic4 = rng.integers(3, 13, CIC2_CODES.size)[np.searchsorted(CIC2_CODES, cic2)]
    industry = cic2 * 100 + _skewed_index(rng, n_cic4)

    region = geo.region.to_numpy()[prov_idx]
    soe_rate = np.select([region == "East", region == "Central"], [0.030, 0.11], 0.13)
    soe = (rng.random(n_firms) < soe_rate).astype(np.int64)

    # Entrants come in time to be seen twice: singletons stay the exception.
    entrant = rng.random(n_firms) >= INCUMBENT_SHARE
    entry = np.where(entrant, rng.integers(1, n_years - 1, n_firms), 0)
    pre_years = np.floor(np.exp(rng.normal(1.25 + 0.8 * soe, 0.95))).astype(np.int64)  # SOEs older
    return Firms(province, city, industry, cic2, soe, pre_years, entry)


def _skewed_index(rng: np.random.Generator, n: np.ndarray) -> np.ndarray:
    """1..n with falling frequency (a capital city, a main sub-industry)."""
    return np.floor(n * rng.random(n.size) ** 3).astype(np.int64) + 1


def draw_presence(
    rng: np.random.Generator, entry: np.ndarray, n_years: int, n_obs: int
) -> np.ndarray:
    """Boolean (firm, year) grid with exactly n_obs True cells and gaps."""
    t = np.arange(n_years)
    exit_ = entry + 1 + rng.geometric(EXIT_HAZARD, entry.size)  # spells last two years or more
    grid = (t >= entry[:, None]) & (t < exit_[:, None])
    excess = int(grid.sum()) - n_obs
    # Remove non-entry spell-years (a firm keeps its entry year, so none
    # vanishes); if spells are too short, add re-entries outside them.
    pool = np.flatnonzero(grid & (t != entry[:, None])) if excess > 0 else np.flatnonzero(~grid)
    grid.flat[rng.choice(pool, abs(excess), replace=False)] = excess < 0
    return grid


def ar1(rng: np.random.Generator, shape: tuple[int, int], rho: float, sd: float) -> np.ndarray:
    """Stationary AR(1) along the last axis with marginal sd `sd`."""
    out = rng.normal(0, sd, shape)
    out[:, 1:] *= np.sqrt(1 - rho**2)
    for j in range(1, shape[1]):
        out[:, j] += rho * out[:, j - 1]
    return out


def _centred(rng: np.random.Generator, sd: float, weight: np.ndarray) -> np.ndarray:
    """Normal effects with weighted mean zero: a few big provinces (industries)
    carry most firm-years, so this keeps the firm-year averages the same for
    every seed."""
    x = rng.normal(0, sd, len(weight))
    return x - np.average(x, weights=weight)


def draw_market(rng: np.random.Generator, years: np.ndarray, first_year: int) -> np.ndarray:
    """Province × year market integration ln sqrt(1/seg)."""
    level = MARKET_LEVEL + _centred(rng, MARKET_PROVINCE_SD, provinces().weight)
    dev = ar1(rng, (len(level), len(years)), MARKET_DEV_RHO, MARKET_DEV_SD)
    raw = level[:, None] + MARKET_TREND * (years - first_year) + dev
    lo, hi = MARKET_BAND
    centre, half = (lo + hi) / 2, (hi - lo) / 2
    return centre + half * np.tanh((raw - centre) / half)


def draw_schooling(
    rng: np.random.Generator, market: np.ndarray, years: np.ndarray, first_year: int, a_h: float
) -> np.ndarray:
    """Province × year humancapital = ln(mean years of schooling of the employed).

    Its Table 2 range (2.03..2.48) is ln of 7.6..11.9 years. The market term is
    the mediation path a_h; the rest is a province level and a trend, and
    `draw_latent` adds the province-year shock.
    """
    region = provinces().region.to_numpy()
    base = 2.08 + np.select([region == "East", region == "Central"], [0.06, 0.0], -0.06)
    base = base + _centred(rng, 0.09, provinces().weight)
    return base[:, None] + 0.02 * (years - first_year) + a_h * (market - MARKET_LEVEL)


def draw_rd(
    rng: np.random.Generator, market: np.ndarray, years: np.ndarray, first_year: int, a_r: float
) -> np.ndarray:
    """CIC2 × province × year R&D intensity on the study's scale (median 5.86)."""
    intensity = np.array([k for _, k, _ in CIC2_TABLE])
    base = np.select([intensity == "labour", intensity == "capital"], [5.05, 5.95], 6.45)
    by_cic2 = base + _centred(rng, 0.45, CIC2_SHARES)
    by_prov = _centred(rng, 0.15, provinces().weight)
    trend = 0.03 * (years - first_year) + a_r * (market - MARKET_LEVEL)
    return by_cic2[:, None, None] + (by_prov[:, None] + trend)[None]


def orthogonal_shock(
    rng: np.random.Generator, sd: float, market: np.ndarray, weight: np.ndarray, group: np.ndarray
) -> np.ndarray:
    """A cell × year shock (year on the last axis), orthogonal in the sample
    to market and market² within each group, net of cell and year effects.

    The shock identifies a mediator's effect on quality (b). Left alone, its
    chance correlation with market would make it a cell-level shock to quality
    that biases the market terms when the mediator is omitted, and that firm
    clusters do not see. Weights are firm-years per cell, so the orthogonality
    holds for the firm-year regressions (exactly with cell fixed effects, to
    within-firm composition with firm fixed effects).
    """
    shape = market.shape
    market, weight, group = (a.reshape(-1, shape[-1]) for a in (market, weight, group))
    shock = rng.normal(0, sd, market.shape)
    cols = [np.where(group == g, x, 0.0) for g in np.unique(group) for x in (market, market**2)]
    x = np.stack([_within(col, weight).ravel() for col in cols], axis=1)
    root_w = np.sqrt(weight.ravel())
    beta = np.linalg.lstsq(x * root_w[:, None], shock.ravel() * root_w, rcond=None)[0]
    return (shock - (x @ beta).reshape(shock.shape)).reshape(shape)


def _within(x: np.ndarray, weight: np.ndarray, n_iter: int = 200) -> np.ndarray:
    """Weighted two-way (row, column) demeaning by alternating projections."""
    row_w = np.maximum(weight.sum(1, keepdims=True), 1)
    col_w = np.maximum(weight.sum(0, keepdims=True), 1)
    for _ in range(n_iter):
        x = x - (weight * x).sum(1, keepdims=True) / row_w
        x = x - (weight * x).sum(0, keepdims=True) / col_w
    return x


def draw_accounts(rng: np.random.Generator, firms: Firms, n_years: int) -> dict[str, np.ndarray]:
    """Firm accounts as ratios on the full (firm, year) grid, before sampling.

    Each is a persistent firm level plus an AR(1) or iid deviation, clipped to
    the study's Table 2 range (the study's controls are winsorised).
    """
    n = firms.soe.size
    t = np.arange(n_years) - firms.entry[:, None]
    size = 7.32 + rng.gamma(5.5, 0.63, n) + 0.5 * firms.soe
    scale = size[:, None] + 0.04 * t + ar1(rng, (n, n_years), 0.7, 0.25)
    roa = -0.25 + np.exp(-1.1 + rng.normal(0, 0.36, (n, 1)) + rng.normal(0, 0.28, (n, n_years)))
    rdebt = 0.55 + rng.normal(0, 0.22, (n, 1)) + ar1(rng, (n, n_years), 0.6, 0.15)
    u = ndtr(0.8 * rng.normal(size=(n, 1)) + 0.6 * rng.normal(size=(n, n_years)))
    invint = 0.744 * (1 - (1 - u) ** (1 / 3.2)) ** (1 / 1.2)  # Kumaraswamy quantile
    return {
        "scale": np.clip(scale, 7.849, 14.869),
        "roa": np.clip(roa, -0.234, 0.909),
        "rdebt": np.clip(rdebt, 0.023, 1.370),
        "invint": invint,
    }
