"""The match stage: each customs exporter-year's ASIF firm (methods §1.4 step 9).

Customs keyed by party_id are matched by `measures.matching` (Yu 2015: name, then zip and
telephone), or by the user's own match file; customs keyed by firm_id are matched already. Either
way the ASIF code found is then the firm its code was linked to (`build.asif`).
"""

from __future__ import annotations

import pandas as pd

from eqexp.build.options import BuildOptions
from eqexp.build.customs import keyed
from eqexp.build.stages import info
from eqexp.data.sources import Sources
from eqexp.measures import matching
from eqexp.steps import StepLog

STEPS = {"yu": matching.STEPS, "name": ("name",)}


def match(sources: Sources, firm_of: pd.Series, opts: BuildOptions) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, StepLog]:
    """exporters (firm_id = the exporter, year, panel_id = its firm), the match (party_id, year, firm_id = ASIF code,
    step) and the match rates by year and step. Parties are matched as the customs file has them, before any
    record is cleaned away."""
    steps: StepLog = []
    asif = sources.accounts
    records, keyed_by = keyed(sources.customs)
    # Only the columns the match reads: dropping rows copies what it keeps, and the records run to millions.
    records = records[[c for c in ("firm_id", "year", *matching.PARTY_COLUMNS) if c in records.columns]]
    records = records.dropna(subset=["firm_id", "year"])
    if keyed_by == "firm_id":
        found = records[["firm_id", "year"]].drop_duplicates().astype({"year": "int64"})
        found = found.assign(party_id=found["firm_id"], step="ids")[["party_id", "year", "firm_id", "step"]]
        found = found[found["firm_id"].isin(firm_of.index)]
        steps.append(info("match_ids", len(found), "customs keyed by the ASIF id already: no match by name or telephone"))
        rates = pd.DataFrame(columns=["year", "step", "parties", "matched", "rate"])
    elif opts.match == "table" or (opts.match == "auto" and sources.match is not None):
        found, rates = _given(records, sources.match, steps)
    else:
        parties = matching.party_years(records.rename(columns={"firm_id": "party_id"}))
        found, rates = matching.match_parties(parties, asif, STEPS["name" if opts.match == "name" else "yu"], log=steps)
    exporters = pd.DataFrame({"firm_id": found["party_id"].to_numpy(), "year": found["year"].to_numpy(),
                              "panel_id": found["firm_id"].map(firm_of).to_numpy()}).dropna(subset=["panel_id"])
    exporters = exporters.astype({"firm_id": records["firm_id"].dtype, "panel_id": firm_of.dtype})
    return exporters, found, rates, steps


def _given(records: pd.DataFrame, table: pd.DataFrame, log: StepLog) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The user's match file (checked by `build.customs.check`); its rates by year against the customs parties."""
    found = table.assign(party_id=table["party_id"].astype("string").str.strip(), step="table")
    parties = records[["firm_id", "year"]].drop_duplicates()
    n = parties.groupby("year").size()
    hit = found.merge(parties.rename(columns={"firm_id": "party_id"}).astype({"party_id": "string"}),
                      on=["party_id", "year"])
    matched = hit.groupby("year").size().reindex(n.index, fill_value=0)
    log.append(info("match_table", len(found), f"the match file: {len(hit)} of {len(parties)} customs party-years"))
    rates = pd.DataFrame({"year": n.index, "step": "table", "parties": n.to_numpy(), "matched": matched.to_numpy(),
                          "rate": (matched / n).to_numpy()})
    return found[["party_id", "year", "firm_id", "step"]], rates
