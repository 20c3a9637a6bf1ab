"""HS vintages of the synthetic customs, and the hs_concordance file that converts them back to HS2002.

The catalogue's codes are the products in HS2002. Each later revision (HS2007, then HS2012 on
top of it; HS1996 before it, when the world starts before 2002) renumbers some codes, splits
some in two and merges some pairs of the same chapter into one code. A record carries a code of
its year's vintage (`measures.hs.vintage_of_year`; a split product's records take either new
code) and the `hs_vintage` column. The concordance lists every code of every other vintage with
its HS2002 code(s), as UNSD's tables do: a merged code maps to both products (one-to-many), which
is what the build's one-to-many rule is tested on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.params import SourceParams
from eqexp.measures.hs import vintage_of_year

TARGET = 2002


def with_vintages(rng: np.random.Generator, customs: pd.DataFrame, p: SourceParams) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Customs with each record's code in its year's vintage (and `hs_vintage`), the concordance, and counts."""
    products = customs["hs6"].cat.categories.to_numpy().astype(str)
    product = customs["hs6"].cat.codes.to_numpy()
    vintage = vintage_of_year(customs["year"])
    used = set(products)
    codes = {TARGET: [[c] for c in products]}
    for chain in (sorted(v for v in set(vintage) if v > TARGET), sorted((v for v in set(vintage) if v < TARGET), reverse=True)):
        previous = codes[TARGET]
        for v in chain:  # each revision starts from the codes of the one next to it, towards HS2002
            codes[v] = previous = _revise(rng, previous, used, p)
    every = list(products) + sorted(used - set(products))  # the categories: HS2002 codes, then the new ones
    position = {code: i for i, code in enumerate(every)}
    hs6 = product.astype(np.int64)
    for v, lists in codes.items():
        if v == TARGET:
            continue
        rows = np.flatnonzero(vintage == v)
        count = np.array([len(c) for c in lists])
        pick = np.floor(rng.random(rows.size) * count[product[rows]]).astype(np.int64)
        flat = np.array([position[c] for cs in lists for c in cs], dtype=np.int64)
        hs6[rows] = flat[(np.cumsum(count) - count)[product[rows]] + pick]
    table = _concordance(codes, products)
    cols = list(customs.columns)
    cols.insert(cols.index("hs6") + 1, "hs_vintage")
    out = customs.assign(hs6=pd.Categorical.from_codes(hs6, categories=every), hs_vintage=vintage.astype(np.int64))[cols]
    info = {"vintages": sorted(int(v) for v in codes),
            "one_to_many_codes": int(table.duplicated(["from_vintage", "from_hs6"]).sum()),
            "records_recoded": int((hs6 != product).sum())}
    return out, table, info


def _revise(rng: np.random.Generator, lists: list[list[str]], used: set[str], p: SourceParams) -> list[list[str]]:
    """One HS revision: each product's codes in the new vintage, from its codes in the previous one."""
    old = sorted({c for cs in lists for c in cs})
    fate = rng.choice(4, len(old), p=[1 - p.vintage_renumber_share - p.vintage_split_share - p.vintage_merge_share,
                                      p.vintage_renumber_share, p.vintage_split_share, p.vintage_merge_share])
    new = {code: [code] for code in old}
    for code, f in zip(old, fate):
        if f in (1, 2):
            new[code] = [_fresh(rng, code[:2], used) for _ in range(f)]
    for code in (c for c, f in zip(old, fate) if f == 3 and new[c] == [c]):
        partners = [c for c, f in zip(old, fate) if c[:2] == code[:2] and c != code and f == 0 and new[c] == [c]]
        if partners:  # merged with an unchanged code of its chapter into a new one
            new[code] = new[partners[rng.integers(0, len(partners))]] = [_fresh(rng, code[:2], used)]
    return [sorted({n for c in cs for n in new[c]}) for cs in lists]


def _fresh(rng: np.random.Generator, chapter: str, used: set[str]) -> str:
    """A code of `chapter` no vintage uses yet."""
    while True:
        code = f"{chapter}{rng.integers(0, 100):02d}{rng.integers(0, 100):02d}"
        if code not in used:
            used.add(code)
            return code


def _concordance(codes: dict[int, list[list[str]]], products: np.ndarray) -> pd.DataFrame:
    rows = [(v, c, products[i]) for v, lists in codes.items() if v != TARGET for i, cs in enumerate(lists) for c in cs]
    table = pd.DataFrame(rows, columns=["from_vintage", "from_hs6", "to_hs6"])
    return table.sort_values(["from_vintage", "from_hs6", "to_hs6"], ignore_index=True).astype({"from_vintage": "int64"})
