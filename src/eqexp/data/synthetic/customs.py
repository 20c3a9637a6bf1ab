"""The customs file: export records of the world's firms, of exporters outside the accounts, of trade
intermediaries, and the noise the cleaning must remove.

CES demand (methods.md §1.1): ln q + σ_h ln p = (σ_h − 1) ln λ + α_h + α_ct with each flow's
quality r = firm-year quality (the world's `quality`, i.e. the latent quality plus its
firm-year shock) + a small flow deviation, and ln λ = K r / (σ_h − 1): a product's quality
ladder is longer the less substitutable it is, so that (σ_h − 1) ln λ = K r has the same scale
in every product. Prices rise with quality (ψ) plus cost noise. Each product's ladder spans
[0, 1]: exporters outside the accounts (unmatched in the merge) fill it, and the product's
bottom and top rungs (r = 0 and 1) are held by two of them in the same destination-year, so
the within-product min–max normalisation maps flow quality back onto the world's scale
(slope 1) and the firm-year TQ tracks the world's quality up to a year effect (the
destination-year fixed effects remove year means; the panel's year fixed effects absorb
them). σ_h is the table's HS3 value, or the table's HS2 mean where the HS3 code is missing, so
the default (table) variant is well specified and the constant-σ variants (5, 10) are not.

Noise for the cleaning to remove: trade intermediaries (names with 进出口, 贸易, 经贸, 科贸,
外经), zero values or quantities, a missing destination, records in an odd unit, unit-value
outliers (quantity ×/÷ 100), agricultural chapters; every world firm-year has at least two
flows, so it survives cleaning unless all its flows are trimmed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.catalogue import DEFAULT_UNIT, ODD_UNIT, UNIT_OF_CHAPTER, catalogue
from eqexp.data.synthetic.names import firm_names
from eqexp.data.synthetic.params import FRONTIER_ID0, INTERMEDIARY_ID0, SPILL_STREAM, UNMATCHED_ID0, SourceParams
from eqexp.data.synthetic.sigma import sigma_table
from eqexp.data.synthetic.spillover import explore, ln_v_base, spillover_quality, value_shocks
from eqexp.data.synthetic.world import has_spillover


def customs(
    rng: np.random.Generator, panel: pd.DataFrame, years: np.ndarray, destinations: pd.DataFrame, p: SourceParams,
    wp: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    wp = dict(wp or {})
    exogenous = p.exogenous_values if p.exogenous_values is not None else has_spillover(wp)
    xrng = np.random.default_rng([int(wp.get("seed", 0)), SPILL_STREAM])
    n_firms = int(panel.firm_id.max())
    cat = catalogue(rng, panel.groupby("cic2").size(), p)
    sigmas, sigma_true = sigma_table(rng, cat["hs6"], p)
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
        product = explore(xrng, product, panel, row, start, count, years, p)
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
        ln_v = ln_v + value_shocks(xrng, flows, kind, panel, years, p)
        r, spill_info = spillover_quality(flows, kind, panel, cat, destinations, np.exp(ln_v), wp)
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

    names, name_code = firm_names(rng, panel, n_firms, n_unmatched_firms, 2 * len(manufactured), n_inter_firms)
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
        "products": int(n_prod), "agricultural_products": int(len(agri)), "hs3_in_sigma_table": int(len(sigmas)),
        "records": int(len(customs)), "flows": int(n), "matched_flows": int(n_matched), "unmatched_flows": int(unmatched["firm"].size),
        "frontier_flows": int(frontier["firm"].size), "intermediary_flows": int(inter["firm"].size),
        "agricultural_flows": int(agri_flows["firm"].size), "split_flows": int(split.size),
        "noise": {"zero": int(zero.size), "missing_destination": int(missing.size), "odd_unit": int(odd.size),
                  "unit_value_outlier": int(outlier.size)},
        "frontier_year": t0, "frontier_destination": str(destinations.destination.iloc[0]),
        "exogenous_values": bool(exogenous), "spillover": spill_info,
    }
    return customs, sigmas, info


def _dedupe(flows: dict[str, np.ndarray], n_prod: int, n_dest: int) -> dict[str, np.ndarray]:
    """One flow per firm × product × destination × year (the first drawn)."""
    key = ((flows["firm"].astype(np.int64) * n_prod + flows["product"]) * n_dest + flows["dest"]) * 100 + flows["year"] % 100
    keep = ~pd.Series(key).duplicated().to_numpy()
    return {k: v[keep] for k, v in flows.items()}
