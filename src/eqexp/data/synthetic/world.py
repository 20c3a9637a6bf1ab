"""Deterministic synthetic firm-year panel with a known truth (the default data).

Shaped like the reference study (seeds/003): 594,596 firm-years of 100,000
exporting manufacturers in 31 provinces, 2004-2013, unbalanced with gaps. The
latent primitives (provincial segmentation path, schooling, R&D intensity,
firm accounts) come from `eqexp.data.synthetic.latent`.

Data-generating process for export quality (firm i, year t, province p, CIC2 j):

    quality_it = α_i + γ_t + mult_it · f(market_pt) + Σ_k δ_k x_k,it
                 + b_h · humancapital_pt + b_r · rd_jpt + ε_it

    f(m)     = β1·m + β2·m² − f(m*) = β2 (m − m*)²,   m* = −β1 / (2 β2)
    mult_it  = (soe_mult if SOE else 1) · region_mult[region_i] · period_mult[t]
    x        = scale, age, roa, rdebt, fic             (δ from Table 4 col. 2)
    humancapital_pt = h_p + 0.02 (t − t0) + a_h (market_pt − 4.08) + u_pt
    rd_jpt          = r_j + r_p + 0.03 (t − t0) + a_r (market_pt − 4.08) + u_jpt
    ε_it iid, symmetric and bounded: 3 σ_ε (2 Beta(4,4) − 1), sd σ_ε

- f is centred at its turning point so that the multipliers scale the shape
  of the inverted U, not its level: a level times a period multiplier would be
  a group × period effect that firm and year fixed effects cannot absorb. With
  a constant multiplier the offset falls into the fixed effects, so β1 and β2
  keep their usual meaning.
- SOEs get no direct market effect (soe_mult = 0). The mediators are
  provincial (human capital) and industry-provincial (R&D), so they move every
  firm's quality, SOEs' included: the indirect effect a_h b_h + a_r b_r is
  linear in market and small (0.0018).
- The mediators' own shocks u are made orthogonal, in the sample, to market and
  market² within region × period (see `eqexp.data.synthetic.latent.orthogonal_shock`); they are the
  only cell-level terms in quality, so firm-clustered standard errors stay
  valid for the market terms whether or not the mediators are controlled for.
- α_i = q_i − (firm mean of the systematic part), q_i drawn from a bounded,
  left-skewed distribution: any function of a firm's own history is a valid
  fixed effect, and this keeps quality inside [0, 1] with the study's shape
  without truncating the linear model.
- With heterogeneous multipliers a pooled regression estimates a weighted
  average of mult · β; regress `latent.quality_latent` (quality without ε) on
  the same specification to get that pseudo-true value for any sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.special import ndtr

from eqexp.data.synthetic.latent import CIC2_CODES, HC_NOISE_SD, INTENSITY_OF, RD_NOISE_SD, Latent, draw_latent
from eqexp.data.geography import PROVINCE_CODES, REGION_OF, REGIONS

CONTROLS = ("scale", "age", "roa", "rdebt", "fic")
DEFAULT_DELTA = {"scale": 0.0169, "age": 0.0039, "roa": 0.0211, "rdebt": 0.0008, "fic": 0.0202}
DEFAULT_REGION_MULT = {"East": 1.0, "Central": 0.4, "West": 0.6}

# Firm quality level q_i: Kumaraswamy(a, b) on [lo, hi] through a Gaussian
# copula that ties it to firm size and provincial integration (Table 3 signs).
QUALITY_BAND, QUALITY_SHAPE = (0.47, 0.875), (1.6, 1.2)
QUALITY_LOADINGS = {"scale": 0.25, "market": 0.15}

# Information spillover (Shi & Sang 2023, seeds/000): multipliers of the spillover effect on
# a customs flow's quality by the firm's factor intensity, its size (ln assets above or below
# its CIC4-year median) and the flow's destination income group. Stronger in technology-
# intensive industries, large firms and high-income destinations, as the study reports.
DEFAULT_SPILL_MULT = {"labour": 0.7, "capital": 1.0, "technology": 1.6, "large": 1.3, "small": 0.7,
                      "high": 1.3, "other": 0.7}


@dataclass(frozen=True)
class WorldParams:
    """Size, seed and true parameters of the synthetic world (YAML-friendly)."""

    n_firms: int = 100_000
    n_obs: int = 594_596
    first_year: int = 2004
    last_year: int = 2013
    seed: int = 20240101
    history_start: int = 2000  # provincial paths start here (chain CPIs, lags)
    beta1: float = 0.05
    beta2: float = -0.0062
    delta: dict = field(default_factory=lambda: dict(DEFAULT_DELTA))
    a_h: float = 0.0303
    b_h: float = 0.0338
    a_r: float = 0.0804
    b_r: float = 0.01
    soe_mult: float = 0.0
    region_mult: dict = field(default_factory=lambda: dict(DEFAULT_REGION_MULT))
    period_break: int = 2008  # first year of the late period
    early_mult: float = 1.3
    late_mult: float = 0.8
    sigma_eps: float = 0.025
    # Information spillover (0: none, the reference study's world). It acts on the quality of
    # the customs flows (eqexp.data.synthetic.spillover), not on `panel.quality`: flow quality gets
    # mult · (spill_scale · S̃ + spill_div · D̃), S̃, D̃ = the firm's lagged leave-one-out CIC4
    # peers' ln(1 + total exports) and ln(1 + distinct HS6), centred at their CIC4 means.
    spill_scale: float = 0.0
    spill_div: float = 0.0
    spill_mult: dict = field(default_factory=lambda: dict(DEFAULT_SPILL_MULT))
    # Endogeneity (eqexp.iv), from a random stream of its own: an unobserved province-year shock
    # v ~ N(0, 1) moves integration by `confounding`·v and, when confounding ≠ 0, quality by
    # `confounding_quality`·v, so OLS of quality on market is biased. `market_iv` is integration
    # without the shock plus N(0, instrument_noise²) noise: it shifts quality only through market
    # (an excluded instrument, varying within provinces over time; more noise, weaker). With
    # confounding 0 (the reference world) market and quality are as without it.
    confounding: float = 0.0
    confounding_quality: float = 0.01
    instrument_noise: float = 0.1

    def __post_init__(self) -> None:
        # Plain dicts of floats, whatever mapping (e.g. OmegaConf's) came in,
        # so that the params compare, hash into cache keys and dump to JSON.
        for name in ("delta", "region_mult", "spill_mult"):
            object.__setattr__(self, name, {k: float(v) for k, v in getattr(self, name).items()})


@dataclass(frozen=True, eq=False)
class World:
    """The observable panel, its noise-free counterpart and the truth."""

    panel: pd.DataFrame
    latent: pd.DataFrame
    truth: dict
    province_year: pd.DataFrame  # province, year (from history_start), seg, market, humancapital
    rd_cells: pd.DataFrame  # cic2, province, year, rd


def generate_world(params: WorldParams) -> World:
    """Draw the world for `params`; the same params always give the same world."""
    p = params
    _validate(p)
    world_seed, noise_seed = np.random.SeedSequence(p.seed).spawn(2)
    rng = np.random.default_rng(noise_seed)
    years = np.arange(p.first_year, p.last_year + 1)
    hist = np.arange(p.history_start, p.last_year + 1)
    lat = draw_latent(
        world_seed, p.n_firms, p.n_obs, years, hist, p.period_break, p.a_h, p.a_r
    )

    shock, instrument = _endogeneity(p, lat.market)
    if p.confounding:
        lat = replace(lat, market=lat.market + p.confounding * shock)
    i, j = np.nonzero(lat.present)  # firm index, year index; sorted by firm then year
    panel = _observables(lat, i, j, years, p.first_year - p.history_start)
    cell = (np.searchsorted(PROVINCE_CODES, panel.province.to_numpy()), j + p.first_year - p.history_start)
    panel["market_iv"] = instrument[cell]
    gamma = 0.004 * (years - p.first_year) + rng.normal(0, 0.003, years.size)
    confounded = p.confounding_quality * shock[cell] if p.confounding else 0.0
    latent = _quality_latent(p, panel, i, gamma[j], rng, confounded)
    eps = 3 * p.sigma_eps * (2 * rng.beta(4.0, 4.0, len(panel)) - 1)
    panel.insert(panel.columns.get_loc("market"), "quality", latent.quality_latent + eps)
    return World(panel, latent, _truth(p, years, gamma), *_paths(hist, lat))


IV_STREAM = 0x49562020  # "IV  ": the endogeneity draws, apart from the world's


def _endogeneity(p: WorldParams, market: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The unobserved province-year shock v and the instrument (integration without v, plus noise)."""
    rng = np.random.default_rng(np.random.SeedSequence([p.seed, IV_STREAM]))
    shock = rng.normal(size=market.shape)
    return shock, market + p.instrument_noise * rng.normal(size=market.shape)


def _validate(p: WorldParams) -> None:
    n_years = p.last_year - p.first_year + 1
    if n_years < 3:
        raise ValueError(f"need at least 3 sample years; got {p.first_year}-{p.last_year}")
    if not len(PROVINCE_CODES) <= p.n_firms <= p.n_obs <= p.n_firms * n_years:
        raise ValueError(
            f"need 31 <= n_firms <= n_obs <= n_firms * n_years; got n_firms={p.n_firms}, "
            f"n_obs={p.n_obs}, n_years={n_years}"
        )
    if not p.history_start <= p.first_year <= p.period_break <= p.last_year + 1:
        raise ValueError("need history_start <= first_year <= period_break <= last_year + 1")
    if set(p.delta) != set(CONTROLS) or set(p.region_mult) != set(REGIONS):
        raise ValueError(f"delta needs keys {CONTROLS}, region_mult needs {REGIONS}")
    if set(p.spill_mult) != set(DEFAULT_SPILL_MULT):
        raise ValueError(f"spill_mult needs keys {tuple(DEFAULT_SPILL_MULT)}")


def _observables(
    lat: Latent, i: np.ndarray, j: np.ndarray, years: np.ndarray, offset: int
) -> pd.DataFrame:
    """The firm-year rows (i, j) of the grid; `offset` maps sample to history years."""
    firms, acc = lat.firms, lat.accounts
    year = years[j]
    prov = np.searchsorted(PROVINCE_CODES, firms.province[i])
    cic2 = firms.cic2[i]
    h = j + offset
    age_years = year - lat.founding[i]
    scale = acc["scale"][i, j]
    intensity = pd.Series(cic2).map(INTENSITY_OF).to_numpy()
    return pd.DataFrame(
        {
            "firm_id": (i + 1).astype(np.int64),
            "year": year.astype(np.int64),
            "province": firms.province[i],
            "city": firms.city[i],
            "industry": firms.industry[i],
            "cic2": cic2,
            "region": pd.Series(firms.province[i]).map(REGION_OF).to_numpy(),
            "soe": firms.soe[i],
            "factor_intensity": intensity,
            "intensity2": np.where(intensity == "labour", "labour", "capital"),
            "market": lat.market[prov, h],
            "scale": scale,
            "age": np.log1p(age_years),
            "roa": acc["roa"][i, j],
            "rdebt": acc["rdebt"][i, j],
            "fic": sa_fic(scale, age_years),
            "invint": acc["invint"][i, j],
            "humancapital": lat.humancapital[prov, h],
            "rd": lat.rd[np.searchsorted(CIC2_CODES, cic2), prov, h],
        }
    )


def sa_fic(scale: np.ndarray, age_years: np.ndarray) -> np.ndarray:
    """ln|SA| (Hadlock–Pierce, methods.md §8) from ln total assets in thousand RMB
    (size = ln RMB million) and years since founding (capped at 37)."""
    size = scale - np.log(1000.0)
    return np.log(np.abs(-0.737 * size + 0.043 * size**2 - 0.040 * np.minimum(age_years, 37)))


def multiplier(p: WorldParams, soe: np.ndarray, region: np.ndarray, year: np.ndarray) -> np.ndarray:
    """Heterogeneity of the direct market effect: ownership × region × period."""
    region_mult = pd.Series(region).map(p.region_mult).to_numpy(dtype=float)
    period = np.where(year < p.period_break, p.early_mult, p.late_mult)
    return np.where(soe == 1, p.soe_mult, 1.0) * region_mult * period


def _quality_latent(
    p: WorldParams, panel: pd.DataFrame, i: np.ndarray, gamma: np.ndarray, rng: np.random.Generator,
    confounded: np.ndarray | float = 0.0,
) -> pd.DataFrame:
    """Noise-free quality: firm level q_i plus within-firm deviations of the systematic part."""
    mult = multiplier(p, panel.soe.to_numpy(), panel.region.to_numpy(), panel.year.to_numpy())
    market = panel.market.to_numpy()
    if p.beta2 == 0:  # a monotone world: a line through the panel's mean integration
        effect = mult * p.beta1 * (market - market.mean())
    else:
        effect = mult * p.beta2 * (market - (-p.beta1 / (2 * p.beta2))) ** 2
    systematic = (
        gamma
        + effect
        + sum(p.delta[k] * panel[k].to_numpy() for k in CONTROLS)
        + p.b_h * panel.humancapital.to_numpy()
        + p.b_r * panel.rd.to_numpy()
        + confounded
    )
    latent = _firm_level(rng, panel, i)[i] + systematic - _firm_mean(i, systematic)[i]
    return pd.DataFrame(
        {"firm_id": panel.firm_id, "year": panel.year, "quality_latent": latent, "effect": effect}
    )


def _firm_mean(i: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.bincount(i, x) / np.bincount(i)


def _firm_level(rng: np.random.Generator, panel: pd.DataFrame, i: np.ndarray) -> np.ndarray:
    """Bounded, left-skewed quality level q_i, higher for big firms in integrated provinces."""
    loads = QUALITY_LOADINGS
    z = sum(w * _standardise(_firm_mean(i, panel[k].to_numpy())) for k, w in loads.items())
    z += np.sqrt(1 - sum(w**2 for w in loads.values())) * rng.normal(size=z.size)
    (lo, hi), (a, b) = QUALITY_BAND, QUALITY_SHAPE
    return lo + (hi - lo) * (1 - (1 - ndtr(z)) ** (1 / b)) ** (1 / a)  # Kumaraswamy quantile


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std()


def _truth(p: WorldParams, years: np.ndarray, gamma: np.ndarray) -> dict:
    turning = -p.beta1 / (2 * p.beta2) if p.beta2 else None  # beta2 = 0: a monotone world, no turning point
    early = f"{p.first_year}-{p.period_break - 1}"
    return {
        "params": asdict(p),
        "equation": (
            "quality = alpha_i + gamma_t + mult * (beta1*market + beta2*market^2 - effect_offset)"
            " + sum(delta_k * x_k) + b_h*humancapital + b_r*rd + eps"
        ),
        "turning_point": turning,
        "effect_offset": p.beta1 * turning + p.beta2 * turning**2 if turning is not None else None,
        "indirect_linear": {"humancapital": p.a_h * p.b_h, "rd": p.a_r * p.b_r},
        "multipliers": {
            "soe": {"0": 1.0, "1": p.soe_mult},
            "region": dict(p.region_mult),
            "period": {early: p.early_mult, f"{p.period_break}-{p.last_year}": p.late_mult},
        },
        "year_effects": {str(y): float(g) for y, g in zip(years, gamma)},
        "mediator_shock_sd": {"humancapital": HC_NOISE_SD, "rd": RD_NOISE_SD},
        "spillover": spillover_truth(p),
        "endogeneity": {
            "confounding": p.confounding, "confounding_quality": p.confounding_quality, "instrument_noise": p.instrument_noise,
            "equation": ("market = market0 + confounding * v; quality += confounding_quality * v (when confounding != 0); "
                         "market_iv = market0 + instrument_noise * e; v, e ~ N(0, 1) by province-year"),
        },
    }


def has_spillover(p: WorldParams | dict) -> bool:
    get = p.get if isinstance(p, dict) else lambda k, d=0.0: getattr(p, k, d)
    return bool(get("spill_scale", 0.0) or get("spill_div", 0.0))


def spillover_truth(p: WorldParams) -> dict:
    """The true information-spillover effect (truth["spillover"]); see `eqexp.data.synthetic.spillover`."""
    m = p.spill_mult
    return {
        "gamma": {"spill_scale": p.spill_scale, "spill_div": p.spill_div},
        "equation": (
            "flow quality r_fct = quality_ft + m_int(f) * m_size(f,t) * m_dest(c) * "
            "(g_scale * (S_ft - mean_CIC4 S) + g_div * (D_ft - mean_CIC4 D)) + flow noise; S = spill_scale, D = spill_div "
            "(CIC4 peers, leave-one-out, year t-1, all trade modes; 0 effect where t-1 is not observed)"),
        "multipliers": {
            "factor_intensity": {k: m[k] for k in ("labour", "capital", "technology")},
            "size": {k: m[k] for k in ("large", "small")},  # ln assets above / at-or-below the CIC4-year median
            "destination": {k: m[k] for k in ("high", "other")},  # World Bank income group of the destination
        },
        "exogenous_values": has_spillover(p),
    }


def _paths(hist: np.ndarray, lat: Latent) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_prov, n_hist = lat.market.shape
    province_year = pd.DataFrame(
        {
            "province": np.repeat(np.array(PROVINCE_CODES, dtype=np.int64), n_hist),
            "year": np.tile(hist, n_prov).astype(np.int64),
            "seg": np.exp(-2 * lat.market).ravel(),
            "market": lat.market.ravel(),
            "humancapital": lat.humancapital.ravel(),
        }
    )
    cic2, prov, year = np.meshgrid(CIC2_CODES, PROVINCE_CODES, hist, indexing="ij")
    rd_cells = pd.DataFrame(
        {"cic2": cic2.ravel(), "province": prov.ravel(), "year": year.ravel(), "rd": lat.rd.ravel()}
    )
    return province_year, rd_cells
