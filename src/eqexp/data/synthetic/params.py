"""Knobs of the synthetic raw sources (YAML: `data.params.sources`), their random streams and firm-id ranges."""

from __future__ import annotations

from dataclasses import dataclass, fields

SOURCES_STREAM = 0x534F5552  # "SOUR": the sources' random streams, apart from the world's
SPILL_STREAM = 0x5350494C  # "SPIL": the exogenous-value draws (the reference world's draws stay as they were)

# Firm-id ranges of the firms that are not in the world's panel, and the ASIF ids of restructured firms.
UNMATCHED_ID0, FRONTIER_ID0, INTERMEDIARY_ID0, NONEXPORTER_ID0 = 10_000_000, 15_000_000, 20_000_000, 30_000_000
RESTRUCTURED_ID0 = 40_000_000


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
    # The complications of the licensed files (methods §1.4 steps 3, 5, 9, 10), each with its own random
    # stream: switched off, the sources are those of a world without it, draw for draw.
    hs_vintages: bool = True  # customs codes in their year's HS vintage, and a conversion table to HS2002
    vintage_renumber_share: float = 0.04  # per HS revision: codes renumbered
    vintage_split_share: float = 0.02  # ... split in two (many-to-one back)
    vintage_merge_share: float = 0.02  # ... merged in pairs (one-to-many back)
    monthly: bool = True  # customs as monthly transaction records (a month column)
    months_extra_mean: float = 0.8  # months a flow is shipped in = 1 + Poisson(this), at most 12
    customs_ids: bool = True  # customs names firms by a 10-digit customs code and their name, not by the ASIF id
    name_variant_share: float = 0.4  # customs names written with other widths, brackets, spaces or suffix variants
    name_changed_share: float = 0.03  # customs names no normalisation recovers (abbreviated)
    phone_changed_share: float = 0.3  # ... of those, another telephone too: unmatchable
    phone_missing_share: float = 0.05  # customs parties without a telephone
    switchboard_share: float = 0.3  # trade intermediaries that are a manufacturer's export arm (its zip and telephone)
    restructuring: bool = True  # firms re-IDed in the ASIF on restructuring
    restructured_share: float = 0.05  # of the firms seen in two years or more
    rename_share: float = 0.4  # of the restructured: a new name
    new_legal_person_share: float = 0.3  # ... a new legal representative
    new_phone_share: float = 0.2  # ... a new telephone number

    @classmethod
    def of(cls, params: SourceParams | dict | None) -> SourceParams:
        if isinstance(params, SourceParams):
            return params
        params = dict(params or {})
        unknown = set(params) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown source parameter(s) {sorted(unknown)}; valid: {', '.join(f.name for f in fields(cls))}")
        return cls(**params)
