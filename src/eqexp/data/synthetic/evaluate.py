"""How well the build recovered what the synthetic complications hid: the match and the firm links, against the truth.

- Match: over the customs party-years, precision = correct matches / matches made, recall =
  correct matches / party-years whose firm is in the ASIF that year.
- Linking: over consecutive rows of one true firm (its years in order), recall = pairs the build
  put in one firm; `recall_re_ided` the same over the pairs whose ASIF code changed (the
  restructurings: the hard cases); precision = the links made (codes joined to an earlier code)
  that join one true firm.
"""

from __future__ import annotations

import pandas as pd


def match_scores(truth: pd.DataFrame, match: pd.DataFrame) -> dict[str, float | int]:
    """`truth`, `match`: party_id, year, firm_id (the ASIF code)."""
    keys = ["party_id", "year"]
    t = truth.assign(party_id=truth["party_id"].astype(str))
    m = match.assign(party_id=match["party_id"].astype(str))
    both = m.merge(t, on=keys, how="left", suffixes=("", "_true"))
    correct = int((both["firm_id"] == both["firm_id_true"]).sum())
    return {"match_precision": correct / max(len(m), 1), "match_recall": correct / max(len(t), 1),
            "matches": len(m), "matchable": len(t), "correct": correct}


def link_scores(truth: pd.DataFrame, firm_of: pd.Series) -> dict[str, float | int]:
    """`truth`: firm_id (the ASIF code), year, world_firm; `firm_of`: code → built firm (its earliest linked code)."""
    rows = truth.assign(built=truth["firm_id"].map(firm_of)).sort_values(["world_firm", "year"])
    same_true = rows["world_firm"].eq(rows["world_firm"].shift())
    same_built = rows["built"].eq(rows["built"].shift())
    re_ided = same_true & rows["firm_id"].ne(rows["firm_id"].shift())
    world = truth.drop_duplicates("firm_id").set_index("firm_id")["world_firm"]
    linked = firm_of[firm_of.index != firm_of.to_numpy()]  # codes joined to an earlier code
    right = world.reindex(linked.index).to_numpy() == world.reindex(linked.to_numpy()).to_numpy()
    return {"link_recall": float((same_built & same_true).sum() / max(same_true.sum(), 1)),
            "link_recall_re_ided": float((same_built & re_ided).sum() / max(re_ided.sum(), 1)),
            "link_precision": float(right.mean()) if len(linked) else 1.0,
            "links": len(linked), "re_ided_pairs": int(re_ided.sum()), "true_pairs": int(same_true.sum())}


def scores(truth: dict[str, pd.DataFrame], match: pd.DataFrame | None, firm_of: pd.Series | None) -> dict:
    """Every score the truth allows (none for a complication switched off)."""
    out: dict = {}
    if "parties" in truth and match is not None:
        out.update(match_scores(truth["parties"], match))
    if "firms" in truth and firm_of is not None:
        out.update(link_scores(truth["firms"], firm_of))
    return out
