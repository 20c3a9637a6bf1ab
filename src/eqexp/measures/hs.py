"""HS vintages: customs codes of every year converted to one vintage (methods.md §1.4 step 3).

Chinese customs codes follow the HS revision in force: HS1996 for 2000–01, HS2002 for
2002–06, HS2007 for 2007–11, HS2012 for 2012–16, HS2017 from 2017. A conversion table
(from_vintage, from_hs6, to_hs6), e.g. UNSD's HS2007 → HS2002 and HS2012 → HS2002 tables
stacked, maps each code of another vintage to the target's. A code of the target vintage is
kept as it is; a code of another vintage missing from the table is dropped, and so is a record
whose vintage the table does not cover. A code the table maps to several target codes
(one-to-many) follows the declared rule: "first", the first listed mapping (as the public
replication code's `duplicates drop`); "drop", the records are dropped; or "family", the target
codes such a code links become one product in every year, known by the smallest code (Pierce &
Schott's 2012 time-consistent codes: right for counting products over the years, wrong for
KSW quality, which would pool products of different price levels). Every rule is counted in the log.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from eqexp.data.validate import HS_CONCORDANCE, HS_VINTAGES, validate
from eqexp.measures.quality import categorical, hs6_text
from eqexp.steps import StepLog, record

OneToMany = Literal["first", "drop", "family"]


def vintage_of_year(year: np.ndarray | pd.Series) -> np.ndarray:
    """The HS revision Chinese customs used in `year` (HS1992 before 1996)."""
    starts = np.array(HS_VINTAGES)
    return starts[np.searchsorted(starts, np.asarray(year, dtype=np.int64), side="right") - 1]


def conversion(table: pd.DataFrame, one_to_many: OneToMany = "drop") -> tuple[pd.Series, pd.Index]:
    """The table as a map (from_vintage, from_hs6) → to_hs6, one target per code, and the one-to-many codes.

    "first" keeps each code's first listed target; "drop" leaves the one-to-many codes out of the
    map; "family" maps every code to its targets' family (`families`).
    """
    key = ["from_vintage", "from_hs6"]
    rows = table.drop_duplicates([*key, "to_hs6"])
    many = rows.duplicated(key, keep=False)
    ambiguous = pd.MultiIndex.from_frame(rows.loc[many, key].drop_duplicates())
    kept = rows[~many] if one_to_many == "drop" else rows.drop_duplicates(key)
    mapping = kept.set_index(key)["to_hs6"]
    if one_to_many == "family":
        mapping = mapping.replace(families(table).to_dict())
    return mapping, ambiguous


def families(table: pd.DataFrame) -> pd.Series:
    """Each target code that a one-to-many code links to another, mapped to its family's smallest code."""
    key = ["from_vintage", "from_hs6"]
    rows = table.drop_duplicates([*key, "to_hs6"])
    linked = rows[rows.duplicated(key, keep=False)]
    parent: dict[str, str] = {}

    def root(code: str) -> str:
        while parent.get(code, code) != code:
            code = parent[code]
        return code

    for _, targets in linked.groupby(key)["to_hs6"]:
        roots = sorted({root(t) for t in targets})
        for r in roots[1:]:  # the smaller root wins, so a family's root is its smallest code
            parent[r] = roots[0]
    codes = linked["to_hs6"].unique()
    return pd.Series([root(c) for c in codes], index=codes, dtype="string")


def convert(records: pd.DataFrame, table: pd.DataFrame, *, target: int = 2002, one_to_many: OneToMany = "drop",
            log: StepLog | None = None) -> pd.DataFrame:
    """Records (hs6, year, optionally hs_vintage) with every code in the `target` vintage, as 6-digit text.

    Records without a code or a year pass unchanged (the cleaning drops them as missing keys).
    """
    hs6, kept = recode(records, table, target=target, one_to_many=one_to_many, log=log)
    return records[kept].assign(hs6=hs6[kept])


def recode(records: pd.DataFrame, table: pd.DataFrame, *, target: int = 2002, one_to_many: OneToMany = "drop",
           log: StepLog | None = None) -> tuple[pd.Categorical, np.ndarray]:
    """`convert` without copying the records: every record's code in the `target` vintage (missing where it is
    dropped) and which records the conversion keeps; the steps are `convert`'s, each counted on what the ones
    before it left."""
    hs6 = hs6_text(records["hs6"]).array
    vintage = (records["hs_vintage"].to_numpy(np.float64) if "hs_vintage" in records.columns
               else vintage_of_year(records["year"].fillna(target)).astype(np.float64))
    known = (hs6.codes >= 0) & records["year"].notna().to_numpy() & ~np.isnan(vintage)
    covered = {*table["from_vintage"].astype(int), target}
    kept = ~(known & ~np.isin(vintage, list(covered)))
    rows = _counted(log, "hs_vintage_not_in_table", len(records), kept,
                    f"HS vintage not in the conversion table (it covers {sorted(covered)})")
    vintage = np.where(known, vintage, target)[kept].astype(np.int64)
    pair, pairs = _pairs(vintage, hs6.codes[kept], hs6.categories)  # a few thousand among millions of records
    other = pairs.get_level_values(0).to_numpy() != target
    mapping, ambiguous = conversion(table, one_to_many)
    to = pd.Series(mapping.reindex(pairs).to_numpy(), dtype="string")
    same = pd.Series(pairs.get_level_values(1), dtype="string").replace("", pd.NA)
    if one_to_many == "family":  # the target vintage's own codes join their family too
        same = same.replace(families(table).to_dict())
    to = to.where(other, same)
    is_ambiguous = other & pairs.isin(ambiguous)
    record(log, "hs_converted", rows, rows, f"records of another vintage given their HS{target} code: {int(other[pair].sum())}")
    on_pairs = np.zeros(len(pairs), bool)  # the pairs' records each step drops
    if one_to_many != "drop":
        given = "the first" if one_to_many == "first" else "their family, in every year"
        record(log, f"hs_one_to_many_{one_to_many}", rows, rows,
               f"records whose code maps to several HS{target} codes, given {given}: {int(is_ambiguous[pair].sum())}")
    else:
        on_pairs = is_ambiguous
        rows = _counted(log, "hs_one_to_many_dropped", rows, ~is_ambiguous[pair],
                        f"code maps to several HS{target} codes (one_to_many: drop)")
    missing = to.isna().to_numpy() & other & ~on_pairs
    _counted(log, "hs_not_in_table", rows, ~(missing | on_pairs)[pair],
             "code of another vintage missing from the conversion table")
    codes = np.full(len(records), -1, dtype=np.int64)
    codes[kept] = pair
    kept[kept] = ~(on_pairs | missing)[pair]
    return categorical(np.where(kept, codes, -1), to), kept


def _counted(log: StepLog | None, step: str, rows: int, kept: np.ndarray, reason: str) -> int:
    """Record a step that keeps the rows `kept` of the `rows` before it; the rows left."""
    record(log, step, rows, int(kept.sum()), reason)
    return int(kept.sum())


def _pairs(vintage: np.ndarray, code: np.ndarray, categories: pd.Index) -> tuple[np.ndarray, pd.MultiIndex]:
    """Each record's index into the distinct (vintage, code text) pairs, and the pairs (missing code: '')."""
    years, v = np.unique(vintage, return_inverse=True)
    key, inverse = np.unique(v * (len(categories) + 1) + code + 1, return_inverse=True)
    labels = np.append("", categories.to_numpy(dtype=object))[key % (len(categories) + 1)]
    return inverse, pd.MultiIndex.from_arrays([years[key // (len(categories) + 1)], labels])


def check_table(table: pd.DataFrame, file: str = "hs_concordance") -> pd.DataFrame:
    """The table validated (named errors for a missing column, an unknown vintage), codes as 6-digit text."""
    validate(table, HS_CONCORDANCE, file)
    return table.assign(from_vintage=pd.to_numeric(table["from_vintage"]).astype("int64"),
                        from_hs6=_six_digits(table["from_hs6"]), to_hs6=_six_digits(table["to_hs6"]))


def _six_digits(codes: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(codes):
        codes = codes.astype("Int64")
    return codes.astype("string").str.strip().str.zfill(6)
