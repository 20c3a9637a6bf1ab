"""Customs parties: the customs names a firm by its own 10-digit code, its name as written there, zip and telephone.

The world's firms' customs names are their ASIF names of that year, written in the party's own
style: most as in the ASIF; some with full-width characters, brackets around the province, spaces
or a suffix variant (有限责任公司 / 有限公司, 股份有限公司 / 股份公司), which name normalisation
undoes; a few abbreviated (no province, no suffix), which it cannot. Telephones are written
"057186912345", "(0571)86912345" or "86912345", or missing. Some trade intermediaries are a
manufacturer's export arm and share its zip code and telephone (a switchboard): a zip-and-telephone
match gives them to the manufacturer, wrongly (the cleaning drops their flows as an intermediary's). The truth: each party-year's ASIF id (none for firms outside the ASIF).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqexp.data.synthetic.params import INTERMEDIARY_ID0, NONEXPORTER_ID0, UNMATCHED_ID0, SourceParams

HALF_TO_FULL = str.maketrans({"(": "（", ")": "）", " ": "　"})


def with_party_ids(rng: np.random.Generator, customs: pd.DataFrame, accounts: pd.DataFrame, ident: pd.DataFrame,
                   p: SourceParams) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Customs with party_id, firm_name, zip and phone instead of the generator's firm_id; the true party → ASIF key.

    `accounts` carries each world firm-year's ASIF id (`firm_id`), name and telephone, and the
    generator's firm (`world_firm`); `ident` the identities of every firm.
    """
    base = np.unique(customs["firm_id"].to_numpy())
    parties = pd.DataFrame({"base": base, "party_id": _codes(rng, base, ident)}).set_index("base")
    style = pd.DataFrame({"variant": rng.random(base.size) < p.name_variant_share,
                          "kind": rng.integers(0, 4, base.size),
                          "changed": rng.random(base.size) < p.name_changed_share,
                          "phone_style": rng.choice(3, base.size, p=[0.45, 0.3, 0.25]),
                          "no_phone": rng.random(base.size) < p.phone_missing_share}, index=base)
    style["new_phone"] = style["changed"] & (rng.random(base.size) < p.phone_changed_share)
    style["other_phone"] = rng.integers(20_000_000, 90_000_000, base.size).astype(str)
    years = customs[["firm_id", "year"]].drop_duplicates()
    asif = accounts[accounts["world_firm"] < UNMATCHED_ID0]
    row = _position(asif["world_firm"].to_numpy(), asif["year"].to_numpy(), years["firm_id"].to_numpy(),
                    years["year"].to_numpy())
    inside = row >= 0
    own = ident.set_index("firm_id").reindex(years["firm_id"].to_numpy())
    name = np.where(inside, asif["firm_name"].to_numpy()[row], own["firm_name"].to_numpy())
    phone = np.where(inside, _local(asif["phone"])[row], own["local_phone"].to_numpy())
    st = style.reindex(years["firm_id"].to_numpy())
    phone = np.where(st["new_phone"].to_numpy(), st["other_phone"].to_numpy(), phone)
    zip_code, phone, board = _switchboards(rng, years, accounts, own["zip"].to_numpy(), phone, p)
    table = years.assign(
        party_id=parties["party_id"].reindex(years["firm_id"].to_numpy()).to_numpy(),
        firm_name=_written(name, st),
        zip=zip_code,
        phone=_phone(phone, own["area_code"].to_numpy(), st),
        asif_id=np.where(inside, asif["firm_id"].to_numpy()[row], -1))
    at = _position(table["firm_id"].to_numpy(), table["year"].to_numpy(), customs["firm_id"].to_numpy(),
                   customs["year"].to_numpy())
    ids = {col: pd.Categorical.from_codes(*_factorized(table[col], at)) for col in ("party_id", "firm_name", "zip", "phone")}
    out = pd.concat([pd.DataFrame(ids), customs.drop(columns=["firm_id", "firm_name"])], axis=1)
    truth = table.loc[table["asif_id"] >= 0, ["party_id", "year", "asif_id"]].rename(columns={"asif_id": "firm_id"})
    info = {"parties": int(base.size), "name_variants": int((style["variant"] & ~style["changed"]).sum()),
            "names_changed": int(style["changed"].sum()), "phones_changed": int(style["new_phone"].sum()),
            "switchboards": int(board)}
    return out, truth.reset_index(drop=True), info


def _position(firm: np.ndarray, year: np.ndarray, of_firm: np.ndarray, of_year: np.ndarray) -> np.ndarray:
    """The row of each (of_firm, of_year) among the rows (firm, year), −1 where it is not one of them."""
    key = firm.astype(np.int64) * 10_000 + year
    order = np.argsort(key)
    wanted = of_firm.astype(np.int64) * 10_000 + of_year
    at = np.minimum(np.searchsorted(key[order], wanted), len(key) - 1)
    return np.where(key[order][at] == wanted, order[at], -1)


def _local(phones: pd.Series) -> np.ndarray:
    """The local number of each telephone written with or without its area code ("0571-86912345")."""
    codes, uniques = pd.factorize(phones)
    return pd.Series(uniques).astype(str).str.replace(r"^0\d+-", "", regex=True).to_numpy(object)[codes]


def _factorized(values: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, pd.Index]:
    codes, uniques = pd.factorize(values)
    return codes[rows], uniques


def _codes(rng: np.random.Generator, base: np.ndarray, ident: pd.DataFrame) -> np.ndarray:
    """10-digit customs codes: the firm's 4-digit city code and a distinct 6-digit number."""
    city = ident.set_index("firm_id")["city"].reindex(base).to_numpy()
    number = rng.choice(10**6, base.size, replace=False)
    return np.char.add(np.char.zfill(city.astype(str), 4), np.char.zfill(number.astype(str), 6)).astype(object)


def _written(name: np.ndarray, style: pd.DataFrame) -> np.ndarray:
    """Each party's way of writing its name."""
    out = name.astype(object).copy()
    variant, kind, changed = style["variant"].to_numpy(), style["kind"].to_numpy(), style["changed"].to_numpy()
    for k, write in enumerate((_full_width_brackets, _spaced, _suffix_variant, _full_width)):
        hit = variant & (kind == k) & ~changed
        out[hit] = [write(s) for s in out[hit]]
    out[changed] = [_abbreviated(s) for s in out[changed]]
    return out


def _full_width_brackets(name: str) -> str:
    return f"（{name[:2]}）{name[2:]}"


def _spaced(name: str) -> str:
    return f"{name[:2]} {name[2:]}"


def _full_width(name: str) -> str:
    return f"({name[:2]}){name[2:]}".translate(HALF_TO_FULL)


def _suffix_variant(name: str) -> str:
    for a, b in (("有限责任公司", "有限公司"), ("股份有限公司", "股份公司"), ("有限公司", "有限责任公司")):
        if name.endswith(a):
            return name[: -len(a)] + b
    return name


def _abbreviated(name: str) -> str:
    """The trade name and industry word only: 浙江宏达昌机械制造有限公司 → 宏达昌机械."""
    return name[2:].split("制造")[0].split("实业")[0].split("科技")[0].split("工业")[0].split("股份")[0].split("有限")[0]


def _phone(local: np.ndarray, area: np.ndarray, style: pd.DataFrame) -> np.ndarray:
    s, none = style["phone_style"].to_numpy(), style["no_phone"].to_numpy()
    written = np.where(s == 0, area + local, np.where(s == 1, "(" + area + ")" + local, local)).astype(object)
    written[none] = None
    return written


def _switchboards(rng: np.random.Generator, years: pd.DataFrame, accounts: pd.DataFrame, zip_code: np.ndarray,
                  phone: np.ndarray, p: SourceParams) -> tuple[np.ndarray, np.ndarray, int]:
    """Some trade intermediaries are a manufacturer's export arm: its zip and telephone, in the years it is in the ASIF."""
    firm = years["firm_id"].to_numpy()
    arms = np.unique(firm[(firm >= INTERMEDIARY_ID0) & (firm < NONEXPORTER_ID0)])
    arms = arms[rng.random(arms.size) < p.switchboard_share]
    asif = accounts[accounts["world_firm"] < UNMATCHED_ID0]
    makers = np.unique(asif["world_firm"].to_numpy())
    maker_of = pd.Series(rng.choice(makers, arms.size), index=arms)
    rows = pd.DataFrame({"world_firm": maker_of.reindex(firm).to_numpy(), "year": years["year"].to_numpy()})
    donor = rows.merge(asif[["world_firm", "year", "zip", "phone"]], on=["world_firm", "year"], how="left")
    hit = donor["zip"].notna().to_numpy()
    zip_code, phone = zip_code.copy(), phone.copy()
    zip_code[hit] = donor.loc[hit, "zip"].to_numpy()
    phone[hit] = _local(donor.loc[hit, "phone"])
    return zip_code, phone, int(hit.sum())
