"""Restructured firms: a new ASIF id (legal-person code) from a restructuring year on (Brandt et al. 2012).

A share of the firms seen in two years or more is restructured in one of its later years: from
then on its rows carry a new id, and some also a new name (a new trade name), a new legal
representative or a new telephone. Founding year, place and industry stay, so the firm can be
linked by id, then name, then legal representative and city, then telephone, founding year and
industry; a firm that changes all of name, representative and telephone cannot be linked.
The truth: every accounts row's firm in the world (`firm`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.identity import maker_names, people, trade_codes, trade_names
from eqexp.data.synthetic.params import RESTRUCTURED_ID0, UNMATCHED_ID0, SourceParams


def restructure(rng: np.random.Generator, accounts: pd.DataFrame, taken: np.ndarray,
                p: SourceParams) -> tuple[pd.DataFrame, dict]:
    """The accounts with restructured firms re-IDed (some also renamed, ...), and counts of what changed.

    `taken`: the trade-name codes in use, so that a new name is nobody else's.
    """
    plan = _plan(rng, accounts, taken, p)
    at = plan.reindex(accounts["firm_id"].to_numpy())
    after = accounts["year"].to_numpy() >= at["year"].to_numpy()  # NaN year (not restructured): False
    out = accounts.copy()
    out.loc[after, "firm_id"] = at.loc[after, "new_id"].to_numpy(np.int64)
    for col, flag, new in (("firm_name", "renamed", "name"), ("legal_person", "new_person", "person")):
        rows = after & at[flag].to_numpy(bool, na_value=False)
        out[col] = _set(out[col], rows, at.loc[rows, new].to_numpy())
    rows = after & at["new_phone"].to_numpy(bool, na_value=False)
    area = out.loc[rows, "phone"].astype(str).str.extract(r"^(0\d+-)", expand=False).fillna("")
    out["phone"] = _set(out["phone"], rows, (area + at.loc[rows, "local"].to_numpy()).to_numpy())
    info = {"restructured_firms": len(plan), "renamed": int(plan["renamed"].sum()),
            "new_legal_person": int(plan["new_person"].sum()), "new_phone": int(plan["new_phone"].sum()),
            "unlinkable": int((plan["renamed"] & plan["new_person"] & plan["new_phone"]).sum()),
            "rows_re_ided": int(after.sum())}
    return out, info


def _set(column: pd.Series, rows: np.ndarray, values: np.ndarray) -> pd.Series:
    """The categorical `column` with `values` in `rows` (new values become new categories)."""
    categories = column.cat.categories
    categories = categories.append(pd.Index(values).unique().difference(categories))
    codes = column.cat.codes.to_numpy().copy()
    codes[rows] = categories.get_indexer(values)
    return pd.Series(pd.Categorical.from_codes(codes, categories), index=column.index, name=column.name)


def _plan(rng: np.random.Generator, accounts: pd.DataFrame, taken: np.ndarray, p: SourceParams) -> pd.DataFrame:
    """Per restructured firm: its restructuring year (a later year of its own), new id, and what else changes."""
    world = accounts[accounts["firm_id"] < UNMATCHED_ID0]
    first = world.groupby("firm_id")["year"].transform("min")
    later = world[world["year"] > first]
    candidates = np.unique(later["firm_id"].to_numpy())
    chosen = np.sort(rng.choice(candidates, int(round(p.restructured_share * candidates.size)), replace=False))
    rows = later[later["firm_id"].isin(chosen)].sort_values(["firm_id", "year"])
    count = rows.groupby("firm_id").size().to_numpy()
    start = np.cumsum(count) - count
    pick = rows.iloc[start + rng.integers(0, count)]  # a random later year of each firm
    n = chosen.size
    names = maker_names(rng, pick["province"].to_numpy(), (pick["industry"] // 100).to_numpy(),
                        trade_names(trade_codes(rng, n, taken)))
    return pd.DataFrame({
        "year": pick["year"].to_numpy(), "new_id": RESTRUCTURED_ID0 + 1 + np.arange(n),
        "renamed": rng.random(n) < p.rename_share, "new_person": rng.random(n) < p.new_legal_person_share,
        "new_phone": rng.random(n) < p.new_phone_share, "name": names, "person": people(rng, n),
        "local": rng.integers(20_000_000, 90_000_000, n).astype(str).astype(object),
    }, index=chosen)
