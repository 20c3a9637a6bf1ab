"""Customs flows of a world with an information spillover: exogenous values, peers' diversity, and flow
quality shifted by the true spillover (truth["spillover"]; docs/adding_a_study.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.latent import ar1
from eqexp.data.synthetic.params import UNMATCHED_ID0, SourceParams
from eqexp.measures.spillover import spillover_measures


def ln_v_base(cat: pd.DataFrame, flows: dict[str, np.ndarray], a_ct: np.ndarray) -> np.ndarray:
    """The part of an exogenous ln value that the product and destination-year effects carry."""
    return (cat.ln_quantity.to_numpy() + cat.ln_price.to_numpy())[flows["product"]] + a_ct


def explore(rng, product, panel, row, start, count, years, p: SourceParams) -> np.ndarray:
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


def value_shocks(rng, flows, kind, panel, years, p: SourceParams) -> np.ndarray:
    """Exogenous part of ln value: firm size (centred ln assets), a CIC4 × year AR(1) shock, flow noise."""
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


def spillover_quality(flows, kind, panel, cat, destinations, value, wp: dict) -> tuple[np.ndarray, dict]:
    """Flow quality with the world's true information spillover (truth["spillover"]).

    S, D = spill_scale, spill_div of `eqexp.measures.spillover` (CIC4 peers, leave-one-out, t−1,
    all trade modes) on the manufacturers' flows of the accounts firms, centred at their CIC4 means
    over the firm-years where t−1 is observed (elsewhere the effect is 0). Each accounts firm's flow gets
    m_int · m_size · m_dest · (γ_scale S̃ + γ_div D̃).
    """
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
