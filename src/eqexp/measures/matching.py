"""Customs–ASIF matching (methods.md §1.4 step 9; Yu 2015, EJ; Tian & Yu).

The customs name a firm by a 10-digit customs code, the ASIF by a legal-person code: the two are
matched year by year, first by the firm's name, then, for the customs parties still unmatched, by
zip code plus the last seven digits of the telephone number (area codes are written
inconsistently, the local number is not). Names are normalised first: full-width characters to
half-width (Unicode NFKC), brackets and spaces removed, and the suffix variants 有限责任公司 →
有限公司, 股份有限公司 → 股份公司. A key that several ASIF firms share in a year matches none of
them (ambiguous), and so does a party-year whose keys point to two firms. Several customs codes
may match one ASIF firm (a firm can hold more than one).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import pandas as pd

from eqexp.steps import StepLog, record

STEPS = ("name", "zip_phone")
SUFFIX_VARIANTS = (("有限责任公司", "有限公司"), ("股份有限公司", "股份公司"))
_DROP = re.compile(r"[\s()\[\]{}<>【】〔〕《》「」]")


def normalise_name(names: pd.Series) -> pd.Series:
    """Firm names comparable across sources: NFKC, no brackets or spaces, one spelling of the suffixes."""
    codes, uniques = pd.factorize(names)  # names repeat over records and years: each is normalised once
    return pd.Series(pd.array([_normalised(u) for u in uniques], dtype="string")).reindex(codes).set_axis(names.index)


@functools.lru_cache(maxsize=None)  # the match and the linking normalise the same ASIF names
def _normalised(name: object) -> object:
    if not isinstance(name, str):
        return pd.NA
    text = _DROP.sub("", unicodedata.normalize("NFKC", name))
    for variant, canonical in SUFFIX_VARIANTS:
        if text.endswith(variant):
            text = text[: -len(variant)] + canonical
    return text or pd.NA


def digits(values: pd.Series) -> pd.Series:
    """The digits of each value (codes read as numbers keep theirs), NA where there are none."""
    if pd.api.types.is_float_dtype(values):
        values = values.astype("Int64")
    codes, uniques = pd.factorize(values)  # each distinct value once
    text = pd.Series(uniques).astype("string").str.replace(r"\D", "", regex=True)
    return text.mask(text.eq("")).reindex(codes).set_axis(values.index)


def phone_key(zip_code: pd.Series, phone: pd.Series) -> pd.Series:
    """Zip code (six digits) plus the last seven digits of the telephone; NA if either is missing or too short."""
    z, p = digits(zip_code).str.zfill(6), digits(phone)
    ok = z.str.len().eq(6) & p.str.len().ge(7)
    return (z + p.str[-7:]).where(ok.fillna(False).astype(bool))


def keys(frame: pd.DataFrame, step: str) -> pd.Series:
    """The match key of each row for `step` (NA where its columns are missing)."""
    if step == "name":
        return normalise_name(frame["firm_name"])
    return phone_key(frame["zip"], frame["phone"])


def step_columns(step: str) -> tuple[str, ...]:
    return ("firm_name",) if step == "name" else ("zip", "phone")


PARTY_COLUMNS = ("firm_name", "zip", "phone")  # what identifies a customs party, besides its code


def match_parties(parties: pd.DataFrame, asif: pd.DataFrame, steps: Sequence[str] = STEPS,
                  log: StepLog | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each customs party-year's ASIF firm, and the match rate by year and step.

    `parties`: party_id, year and the customs' identifying columns (one row per distinct
    combination); `asif`: firm_id, year and the same columns. Returns the match (party_id,
    year, firm_id, step) and the rates (year, step, parties, matched, rate: the share of the
    year's parties matched by this step or an earlier one). A step whose columns are missing
    on either side is skipped and logged.
    """
    done = pd.DataFrame({"party_id": parties["party_id"].iloc[:0], "year": pd.Series(dtype="int64"),
                         "firm_id": asif["firm_id"].iloc[:0], "step": pd.Series(dtype="string")})
    n_parties = parties.drop_duplicates(["party_id", "year"]).groupby("year").size()
    rates = []
    for step in steps:
        missing = [c for c in step_columns(step) if c not in parties.columns or c not in asif.columns]
        if missing:
            record(log, f"match_{step}", 0, 0, f"skipped: no {', '.join(missing)} column in the customs or the accounts")
            continue
        todo = parties.merge(done[["party_id", "year"]], on=["party_id", "year"], how="left", indicator=True)
        todo = todo[todo["_merge"] == "left_only"].drop(columns="_merge")
        found = _match_step(todo, asif, step).assign(step=step)
        done = pd.concat([done, found], ignore_index=True)
        record(log, f"match_{step}", len(todo.drop_duplicates(["party_id", "year"])), len(found),
               f"customs party-years matched by {_WHAT[step]} (rows out: matched)")
        so_far = done.groupby("year").size().reindex(n_parties.index, fill_value=0)
        rates.append(pd.DataFrame({"year": n_parties.index, "step": step, "parties": n_parties.to_numpy(),
                                   "matched": so_far.to_numpy(), "rate": (so_far / n_parties).to_numpy()}))
    table = pd.concat(rates, ignore_index=True) if rates else pd.DataFrame(columns=["year", "step", "parties", "matched", "rate"])
    return done.reset_index(drop=True), table


_WHAT = {"name": "normalised name and year", "zip_phone": "zip code + last 7 digits of the telephone, and year"}


def _match_step(parties: pd.DataFrame, asif: pd.DataFrame, step: str) -> pd.DataFrame:
    """party_id, year, firm_id matched on one key: ASIF keys unique in their year, one firm per party-year."""
    key = pd.factorize(pd.concat([keys(parties, step), keys(asif, step)], ignore_index=True))[0]  # merge on integers
    left = pd.DataFrame({"party_id": parties["party_id"].to_numpy(), "year": parties["year"].to_numpy(),
                         "key": key[: len(parties)]})
    right = pd.DataFrame({"firm_id": asif["firm_id"].to_numpy(), "year": asif["year"].to_numpy(),
                          "key": key[len(parties):]})
    left, right = left[left["key"] >= 0], right[right["key"] >= 0]  # no key: no match
    right = right.drop_duplicates().drop_duplicates(["year", "key"], keep=False)  # a shared key matches nobody
    hits = left.merge(right, on=["year", "key"]).drop_duplicates(["party_id", "year", "firm_id"])
    one = hits.groupby(["party_id", "year"], observed=True)["firm_id"].transform("size").eq(1).to_numpy()
    return hits.loc[one, ["party_id", "year", "firm_id"]]


def party_years(customs: pd.DataFrame) -> pd.DataFrame:
    """The distinct (party_id, year, name, zip, phone) of the customs records: what the match compares."""
    cols = ["party_id", "year", *[c for c in PARTY_COLUMNS if c in customs.columns]]
    return customs[cols].drop_duplicates().reset_index(drop=True).astype({"year": np.int64})
