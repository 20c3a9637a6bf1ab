"""The raw sources of a synthetic world: one module per file, each tied to the world's truth.

The files first come as a tidy world would give them (one firm id shared by customs and the
ASIF, one HS vintage, firms that keep their id, yearly records); then each complication of the
licensed files is laid on, from its own random stream, unless switched off in `SourceParams`:
firms re-IDed on restructuring (`restructuring`), customs parties with their own codes, names
and telephones (`parties`), codes of the year's HS vintage (`vintages`), monthly records
(`months`). Switching one off gives the sources of the same world without it, draw for draw.
`Sources.truth` keeps what the complications hide: each ASIF row's firm (`firms`: firm_id,
year, world_firm) and each customs party-year's ASIF id (`parties`: party_id, year, firm_id).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from eqexp.data.sources import Sources
from eqexp.data.synthetic.accounts import accounting_columns, accounts
from eqexp.data.synthetic.customs import customs
from eqexp.data.synthetic.destinations import destinations
from eqexp.data.synthetic.education import education
from eqexp.data.synthetic.identity import firms_of_sources, identities, with_identity
from eqexp.data.synthetic.industry_rd import industry_rd
from eqexp.data.synthetic.months import monthly
from eqexp.data.synthetic.params import SOURCES_STREAM, SourceParams
from eqexp.data.synthetic.parties import with_party_ids
from eqexp.data.synthetic.price_index import price_index
from eqexp.data.synthetic.rauch import rauch
from eqexp.data.synthetic.restructuring import restructure
from eqexp.data.synthetic.vintages import with_vintages
from eqexp.data.synthetic.world import World

STREAMS = ("customs", "accounts", "price_index", "education", "identity", "restructuring", "parties", "vintages",
           "months", "rauch", "accounting")


def generate_sources(world: World, params: SourceParams | dict | None = None) -> Sources:
    """The raw sources of `world`; the same world and params always give the same sources."""
    p = SourceParams.of(params)
    wp = world.truth["params"]
    seeds = np.random.SeedSequence([int(wp["seed"]), SOURCES_STREAM]).spawn(len(STREAMS))
    rng = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds)}
    years = np.arange(int(wp["first_year"]), int(wp["last_year"]) + 1)
    dest = destinations()
    flows, sigma, cinfo = customs(rng["customs"], world.panel, years, dest, p, wp)
    products = flows["hs6"].cat.categories.to_numpy()  # HS2002, before any vintage
    firms, ainfo = accounts(rng["accounts"], world.panel, years, p)
    firms, ainfo["broken_rules"] = accounting_columns(rng["accounting"], firms, p)
    prices, pinfo = price_index(rng["price_index"], world.province_year)
    flows, firms, hs_table, truth, xinfo = _complications(rng, flows, firms, world.panel, p)
    info = {"params": asdict(p), "customs": cinfo, "accounts": ainfo, "price_index": pinfo, **xinfo}
    return Sources(flows, firms, prices, education(rng["education"], world.province_year), industry_rd(world.rd_cells),
                   sigma, dest.drop(columns="weight"), hs_table, rauch(rng["rauch"], products),
                   province_vars=province_vars(world.panel), info=info, truth=truth)


def province_vars(panel: pd.DataFrame) -> pd.DataFrame:
    """The world's province-year instrument for market integration (`market_iv`), as a user brings one."""
    return panel[["province", "year", "market_iv"]].drop_duplicates(["province", "year"]).sort_values(["province", "year"], ignore_index=True)


def _complications(rng: dict, flows: pd.DataFrame, firms: pd.DataFrame, panel: pd.DataFrame,
                   p: SourceParams) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None, dict, dict]:
    """Customs and accounts with the complications switched on, the HS concordance (with vintages), the truth they
    hide, and what they did."""
    ident = identities(rng["identity"], firms_of_sources(panel, firms, flows, rng["identity"]))
    firms = with_identity(rng["identity"], firms, ident).assign(world_firm=firms["firm_id"])
    info: dict = {}
    if p.restructuring:
        firms, info["restructuring"] = restructure(rng["restructuring"], firms, ident["trade_code"].to_numpy(), p)
    truth = {"firms": firms[["firm_id", "year", "world_firm"]].copy()}
    if p.customs_ids:
        flows, truth["parties"], info["parties"] = with_party_ids(rng["parties"], flows, firms, ident, p)
    else:  # customs keyed by the ASIF id of the firm-year (the new id after a restructuring)
        asif = firms.set_index(["world_firm", "year"])["firm_id"]
        key = pd.MultiIndex.from_arrays([flows["firm_id"].to_numpy(), flows["year"].to_numpy()])
        own = asif.reindex(key).to_numpy()
        flows = flows.assign(firm_id=np.where(np.isnan(own), flows["firm_id"].to_numpy(), own).astype(np.int64))
    table = None
    if p.hs_vintages:
        flows, table, info["vintages"] = with_vintages(rng["vintages"], flows, p)
    if p.monthly:
        flows, info["months"] = monthly(rng["months"], flows, p)
    return flows, firms.drop(columns="world_firm"), table, truth, info
