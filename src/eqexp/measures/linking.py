"""Firm linking across years in the ASIF (methods.md §1.4 step 10; Brandt, Van Biesebroeck & Zhang 2012).

A firm's legal-person code changes when it is restructured. As Brandt et al. do, rows are
linked by the code first: all rows with one code are one firm. Then a code's last row (year t)
is linked to another code's first row (year t + 1; then t + 2 for a firm missing a year) by,
in order, the firm's name (normalised as in `measures.matching`), its legal representative and
city (their "legal person + 4-digit area code"), and its telephone (last seven digits) with the
founding year and CIC industry. At each step only keys unique among that year's candidates on
both sides link, one to one. Linked codes form one firm, identified by its earliest code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from eqexp.measures.matching import digits, normalise_name
from eqexp.steps import StepLog, record

STEPS = ("name", "legal_person", "phone")
COLUMNS = {"name": ("firm_name",), "legal_person": ("legal_person", "city"),
           "phone": ("phone", "founding_year", "industry")}
_WHAT = {"name": "name", "legal_person": "legal representative + city", "phone": "telephone + founding year + industry"}


def link_key(rows: pd.DataFrame, step: str) -> pd.Series:
    """The linking key of each row for `step`, NA where a part is missing."""
    if step == "name":
        return normalise_name(rows["firm_name"])
    if step == "legal_person":
        person = rows["legal_person"].astype("string").str.strip().mask(lambda s: s.eq(""))
        return person + "|" + digits(rows["city"]).str[:4]
    phone = digits(rows["phone"]).str[-7:]
    return phone + "|" + digits(rows["founding_year"]) + "|" + digits(rows["industry"])


def link_firms(accounts: pd.DataFrame, steps: Sequence[str] = STEPS, max_gap: int = 2,
               log: StepLog | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """The firm each code belongs to (code → earliest linked code) and the links made by gap and step.

    `accounts`: firm_id, year and the columns of the steps; a step whose columns are missing is skipped.
    """
    usable = [s for s in steps if all(c in accounts.columns for c in COLUMNS[s])]
    ordered = accounts[["firm_id", "year", *{c for s in usable for c in COLUMNS[s]}]].sort_values("year", kind="stable")
    first = ordered.drop_duplicates("firm_id", keep="first")
    last = ordered.drop_duplicates("firm_id", keep="last")
    for s in steps:
        if s not in usable:
            record(log, f"link_{s}", 0, 0, f"skipped: no {', '.join(c for c in COLUMNS[s] if c not in accounts.columns)} column")
    keyed = {s: (link_key(last, s).to_numpy(), link_key(first, s).to_numpy()) for s in usable}
    successor: dict = {}
    predecessor: dict = {}
    made = []
    for gap in range(1, max_gap + 1):
        for s in usable:
            ends = pd.DataFrame({"end": last["firm_id"].to_numpy(), "year": last["year"].to_numpy() + gap, "key": keyed[s][0]})
            starts = pd.DataFrame({"start": first["firm_id"].to_numpy(), "year": first["year"].to_numpy(), "key": keyed[s][1]})
            ends = _unique(ends[~ends["end"].isin(successor)])
            starts = _unique(starts[~starts["start"].isin(predecessor)])
            pairs = ends.merge(starts, on=["year", "key"])
            successor.update(zip(pairs["end"], pairs["start"]))
            predecessor.update(zip(pairs["start"], pairs["end"]))
            made.append({"gap": gap, "step": s, "links": len(pairs)})
            record(log, f"link_{s}_gap{gap}", len(first), len(first) - len(pairs),
                   f"codes linked to a code that ended {gap} year(s) before, by {_WHAT[s]} (dropped: links made)")
    firm = pd.Series(_roots(first["firm_id"].to_numpy(), predecessor), index=first["firm_id"].to_numpy())
    record(log, "linked_firms", len(first), firm.nunique(), "ASIF codes → firms (rows out: firms after linking)")
    return firm, pd.DataFrame(made, columns=["gap", "step", "links"])


def _unique(side: pd.DataFrame) -> pd.DataFrame:
    """Rows whose key is present and unique among the candidates of their year."""
    side = side.dropna(subset=["key"])
    return side[~side.duplicated(["year", "key"], keep=False)]


def _roots(codes: np.ndarray, predecessor: dict) -> list:
    """Each code's earliest linked code (links only run forward in time, so chains end)."""
    root: dict = {}
    for code in codes:
        path = [code]
        while path[-1] in predecessor and path[-1] not in root:
            path.append(predecessor[path[-1]])
        top = root.get(path[-1], path[-1])
        for c in path:
            root[c] = top
    return [root[c] for c in codes]
