"""The raw sources of a synthetic world: one module per file, each tied to the world's truth."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from eqexp.data.sources import Sources
from eqexp.data.synthetic.accounts import accounts
from eqexp.data.synthetic.customs import customs
from eqexp.data.synthetic.destinations import destinations
from eqexp.data.synthetic.education import education
from eqexp.data.synthetic.industry_rd import industry_rd
from eqexp.data.synthetic.params import SOURCES_STREAM, SourceParams
from eqexp.data.synthetic.price_index import price_index
from eqexp.data.synthetic.world import World


def generate_sources(world: World, params: SourceParams | dict | None = None) -> Sources:
    """The raw sources of `world`; the same world and params always give the same sources."""
    p = SourceParams.of(params)
    wp = world.truth["params"]
    streams = np.random.SeedSequence([int(wp["seed"]), SOURCES_STREAM]).spawn(6)
    rng = [np.random.default_rng(s) for s in streams]
    years = np.arange(int(wp["first_year"]), int(wp["last_year"]) + 1)
    dest = destinations()
    flows, sigma, cinfo = customs(rng[0], world.panel, years, dest, p, wp)
    firms, ainfo = accounts(rng[1], world.panel, years, p)
    prices, pinfo = price_index(rng[2], world.province_year)
    info = {"params": asdict(p), "customs": cinfo, "accounts": ainfo, "price_index": pinfo}
    return Sources(flows, firms, prices, education(rng[3], world.province_year), industry_rd(world.rd_cells), sigma,
                   dest.drop(columns="weight"), info)
