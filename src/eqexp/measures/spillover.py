"""Industrial information-spillover measures at firm-year (methods.md §7; Shi & Sang 2023, seeds/000).

customs flows + firm accounts ─place every exporter in its accounts industry/city that year─▶
  per peer group × year: exports, exporters, firms, destination exports, exporters per item
  ─leave-one-out for each firm-year, from the group's year t−lag activity─▶ firm-year spillovers.

The paper's own definitions are not available (only its abstract); these are the standard
constructions of methods §7, each variant selectable by a keyword option (default first).

Peer groups (`scope`), all at year s = t − `lag` and all leave-one-out (firm f never counts
as its own peer):

- "industry"       prefix `spill_`:        exporters g ≠ f with CIC4(g, s) = CIC4(f, t).
- "city"           prefix `spill_city_`:    exporters g ≠ f in f's prefecture city (any industry).
- "city_industry"  prefix `spill_cityind_`: exporters g ≠ f in f's city and CIC4 industry.
- "cross"          prefix `cross_`:         exporters in the *other* CIC4 industries of f's CIC2
                                            (f is excluded too, should it sit there in year s).

An exporter in year s is a firm with positive exports in the flows of s *and* a row in the
accounts of s (the accounts give its industry and city; flows of firm-years absent from the
accounts are dropped and logged). Group membership uses each firm's classification in the year
of the activity: (f, t) gets the year-s activity of the firms that were in f's year-t industry
in year s. The lag is a property of the peer group, not of f: f need not be in the accounts in
s (an entrant gets its industry's s activity), and f's own s exports are removed only if f was
in that group in s.

Columns, for each scope prefix P (values in USD; every "ln" is ln(1 + x)):

- P_scale        the headline scale measure chosen by `peer_scale` (default "total").
- P_div          the headline diversity measure chosen by `peer_diversity` (default "hs6").
- P_scale_total  ln(1 + Σ_{g∈peers} Σ_c E_gcs): peers' total exports.
- P_scale_dest   Σ_c w_fc · ln(1 + Σ_{g∈peers} E_gcs) over the destinations c that f serves,
                 w_fc = f's export-value share of c, in year t (`dest_weights="current"`) or s
                 ("lagged"). Missing when f has no exports in the weighting year.
- P_scale_mean   ln(1 + peers' total exports / number of peers): average exports per peer.
- P_npeers       number of peer exporters (a count, not logged).
- P_div_hs6      ln(1 + #distinct HS6 products exported by at least one peer).
- P_div_dest     ln(1 + #distinct destinations served by at least one peer).
- P_div_pairs    ln(1 + #distinct (HS6, destination) pairs exported by at least one peer).

  An item (product, destination or pair) counts for f if some exporter other than f ships it:
  a product only f exports does not count for f, but counts for f's peers.

- density_ind       exporters / firms in (f's CIC4, s)          ("industry" in scope).
- density_city_ind  exporters / firms in (f's city × CIC4, s)   ("city_industry" in scope).

  With `density="log_count"` both are ln(1 + #exporters) instead. Density describes the market
  f sells from, so it is *not* leave-one-out: f counts in the numerator (if it exported in s) and
  the denominator (if it was in the accounts of s), like every other firm of the cell. Firms =
  all firm-years of the accounts in the cell, exporters or not. A cell with no firms in s gives
  a missing share.

Missing values. Firm-years whose year t − lag is not observed (not in both the accounts and
the flows, e.g. the first year, or the year after a dropped year) get missing values in every
column; so do firm-years with no industry (or, for the city scopes, no city). A firm with no
peers has P_npeers = 0 and every other P_ column 0 (ln 1), not missing, unless
`alone="missing"`, which makes them missing (P_npeers stays 0).

`trade_modes=("10",)` computes everything from general-trade flows only (see `general_trade`):
exporters, shares and items are then those of general trade.

With `dest_weights="current"` the lagged P_scale_dest mixes f's year-t shares with its peers'
year-s exports; every other column at (f, t) with lag k equals the contemporaneous value at
(f, t − k) when f stays in its groups. Pass the raw flows (not the quality-cleaned ones): peers'
information is all they export, whatever the quality estimation later trims. Vectorised: about
12 s of CPU and 1.2 GB above its inputs for 3M flows and 600k firm-years, all four scopes.

Every flows step that removes rows appends {step, rows_in, dropped, reason, rows_out} to the
log; steps that leave measures missing are logged with dropped = 0 and the count in the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from eqexp.data.validate import DataValidationError, check_types, check_unique_keys, require_columns
from eqexp.measures.classify import cic2
from eqexp.measures.quality import hs6_text, keep_trade_modes
from eqexp.steps import StepLog, drop_rows, record

SCOPES = ("industry", "city", "city_industry", "cross")
PREFIX = {"industry": "spill", "city": "spill_city", "city_industry": "spill_cityind", "cross": "cross"}
GENERAL_TRADE = ("10",)  # customs trade mode 一般贸易
ITEMS = ("hs6", "dest", "pairs")

PeerScale = Literal["total", "dest", "count", "mean"]
PeerDiversity = Literal["hs6", "dest", "pairs"]
Density = Literal["share", "log_count"]
DestWeights = Literal["current", "lagged"]
Alone = Literal["zero", "missing"]

_OPTIONS = {
    "peer_scale": ("total", "dest", "count", "mean"),
    "peer_diversity": ITEMS,
    "density": ("share", "log_count"),
    "dest_weights": ("current", "lagged"),
    "alone": ("zero", "missing"),
}
_KEY_LIMIT = 2**62
_ROUNDING = 1e-9  # relative size below which a leave-one-out difference of sums is rounding noise


def columns(scope: str | Sequence[str] = SCOPES) -> list[str]:
    """The measure columns `spillover_measures` returns for `scope`, in order (without firm_id, year)."""
    scopes = _scopes(scope)
    out = [f"{PREFIX[s]}_{c}" for s in scopes for c in
           ("scale", "div", "scale_total", "scale_dest", "scale_mean", "npeers", "div_hs6", "div_dest", "div_pairs")]
    out += ["density_ind"] if "industry" in scopes else []
    return out + (["density_city_ind"] if "city_industry" in scopes else [])


def general_trade(flows: pd.DataFrame, *, modes: Collection[int | str] = GENERAL_TRADE,
                  log: StepLog | None = None) -> pd.DataFrame:
    """Keep general-trade flows only (trade_mode "10", §7 robustness), logged as step "trade_mode"."""
    return keep_trade_modes(flows, modes, log)


# --------------------------------------------------------------------------- preparation


@dataclass
class _World:
    """Accounts firm-years as rows 0..n−1 and the flows reduced to integer-coded arrays on them."""

    acc: pd.DataFrame           # firm_id, year (+ industry, city, cic2 as numbers), one row per firm-year
    year: np.ndarray            # year of each row
    ymin: int
    ny: int
    prev: np.ndarray            # row of (f, t − lag), −1 if absent
    nxt: np.ndarray             # row of (f, t + lag), −1 if absent (inverse of prev)
    s_ok: np.ndarray            # year t − lag observed
    sidx: np.ndarray            # (t − lag) − ymin where s_ok, else 0
    exports: np.ndarray         # exports of each row (0 for non-exporters)
    fd_key: np.ndarray          # sorted row*nd + destination code
    fd_val: np.ndarray          # its export value
    nd: int
    items: dict                 # name -> (row array, item code array, number of item codes)


def _scopes(scope: str | Sequence[str]) -> tuple[str, ...]:
    scopes = (scope,) if isinstance(scope, str) else tuple(scope)
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ValueError(f"unknown spillover scope(s) {bad or scopes!r}; use any of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes 0..k−1 of a key column, −1 where missing."""
    return pd.factorize(values)[0].astype(np.int64)


def _lookup(keys: np.ndarray, vals: np.ndarray, q: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """vals at the positions of q in the sorted `keys`; `fill` where q is absent."""
    if len(keys) == 0 or len(q) == 0:
        return np.full(len(q), fill, dtype=float)
    order = np.argsort(q)  # sorted probes are ~10x faster than random ones on large tables
    pos = np.minimum(np.searchsorted(keys, q[order]), len(keys) - 1)
    out = np.empty(len(q), dtype=np.result_type(vals, type(fill)))
    out[order] = np.where(keys[pos] == q[order], vals[pos], fill)
    return out


def _tally(x: np.ndarray, weights: np.ndarray | None = None, *, sort: bool = False):
    """(distinct values of x, their counts or weighted sums, code of each x); hash-based, sorted if asked."""
    codes, uniq = pd.factorize(x)
    total = np.bincount(codes, weights=weights, minlength=len(uniq))
    if not sort:
        return uniq, total, codes
    order = np.argsort(uniq)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return uniq[order], total[order], rank[codes]


def _check_keys(*maxima: int) -> None:
    if float(np.prod([max(int(m), 1) for m in maxima], dtype=float)) >= _KEY_LIMIT:
        raise DataValidationError("spillover measures: too many firm-years × products × destinations to encode in "
                                  "64-bit keys; split the flows by year range before computing spillovers.")


def _numeric_code(accounts: pd.DataFrame, col: str) -> np.ndarray:
    """A code column (text or number, float where missing values forced it) as float; missing stays NaN."""
    num = pd.to_numeric(accounts[col], errors="coerce")
    text = accounts[col].astype("string").str.strip()
    bad = num.isna() & text.notna() & text.ne("")
    if bad.any():
        raise DataValidationError(
            f"firm accounts: column '{col}' should hold numeric codes but {int(bad.sum())} row(s) do not; examples:\n"
            f"{accounts.loc[bad, ['firm_id', 'year', col]].head(5).to_string()}\n  Fix: store codes as digits only "
            f"(CIC 4-digit industry, 4-digit prefecture city); leave unknown codes empty.")
    return num.to_numpy(dtype=float)


def _prepare(flows: pd.DataFrame, accounts: pd.DataFrame, scopes: tuple[str, ...], lag: int,
             trade_modes: Collection[int | str] | None, log: StepLog) -> _World:
    need = ["firm_id", "year", "industry"] + (["city"] if {"city", "city_industry"} & set(scopes) else [])
    require_columns(accounts, need, "firm accounts")
    check_types(accounts, {"year": "integer"}, "firm accounts")
    check_unique_keys(accounts, ("firm_id", "year"), "firm accounts")
    require_columns(flows, ["firm_id", "hs6", "destination", "year", "value_usd"], "customs flows")
    check_types(flows, {"hs6": "code", "year": "integer", "value_usd": "numeric"}, "customs flows")

    acc = pd.DataFrame({"firm_id": accounts["firm_id"].to_numpy(),
                        "year": pd.to_numeric(accounts["year"]).to_numpy(dtype=np.int64),
                        "industry": _numeric_code(accounts, "industry")})
    acc["cic2"] = cic2(acc["industry"]).to_numpy(dtype=float)
    if "city" in need:
        acc["city"] = _numeric_code(accounts, "city")
    observed = np.intersect1d(acc["year"].unique(), pd.to_numeric(flows["year"]).dropna().unique().astype(np.int64))

    keep = ["firm_id", "hs6", "destination", "year", "value_usd"] + (["trade_mode"] if trade_modes is not None else [])
    flows = keep_trade_modes(flows[[c for c in keep if c in flows.columns]].reset_index(drop=True), trade_modes, log)
    value = pd.to_numeric(flows["value_usd"], errors="coerce")
    bad = flows[["firm_id", "hs6", "destination", "year"]].isna().any(axis=1) | ~(value > 0)
    flows = drop_rows(flows, bad, "spill_bad_flows", "missing firm, hs6, destination or year, or value <= 0", log)

    # One integer key per firm-year, shared by accounts and flows (firm ids coded jointly).
    n = len(acc)
    fcode = pd.factorize(pd.concat([acc["firm_id"], flows["firm_id"]], ignore_index=True))[0].astype(np.int64)
    flow_year = pd.to_numeric(flows["year"]).to_numpy(dtype=np.int64)
    all_years = np.concatenate([acc["year"].to_numpy(), flow_year])
    ymin, ymax = (int(all_years.min()), int(all_years.max())) if len(all_years) else (0, 0)
    span = ymax - ymin + 1 + lag
    acc_key = fcode[:n] * span + (acc["year"].to_numpy() - ymin + lag)
    order = np.argsort(acc_key, kind="stable")
    sorted_key = acc_key[order]
    rows = order.astype(np.int64)

    def row_of(key: np.ndarray) -> np.ndarray:
        return _lookup(sorted_key, rows, key, fill=-1).astype(np.int64)

    frow = row_of(fcode[n:] * span + (flow_year - ymin + lag))
    unmatched = frow < 0
    if len(flows) and unmatched.all() and n:
        raise DataValidationError(
            "spillover measures: no customs flow matches a firm-year of the accounts. Fix: firm_id must be the same "
            f"identifier, of the same type, in both tables (flows: {flows['firm_id'].dtype}, accounts: "
            f"{acc['firm_id'].dtype}), and the years must overlap.")
    flows = drop_rows(flows, unmatched, "spill_unmatched",
                      "firm-year not in the accounts: no industry or city to place the exporter", log)
    frow = frow[~unmatched]

    year = acc["year"].to_numpy()
    prev = row_of(acc_key - lag)
    nxt = np.full(n, -1, dtype=np.int64)
    nxt[prev[prev >= 0]] = np.flatnonzero(prev >= 0)
    s_ok = np.isin(year - lag, observed)
    ny = ymax - ymin + 1
    sidx = np.where(s_ok, year - lag - ymin, 0)

    h = _codes(hs6_text(flows["hs6"]))
    d = _codes(flows["destination"])
    nh, nd = int(h.max(initial=-1)) + 1, int(d.max(initial=-1)) + 1
    v = value.loc[flows.index].to_numpy(dtype=float)
    _check_keys(n, nh, nd)
    _check_keys(n * ny, nh, nd)

    fd_key, fd_val, _ = _tally(frow * nd + d, v, sort=True)
    exports = np.bincount(fd_key // max(nd, 1), weights=fd_val, minlength=n) if n else np.zeros(0)
    rh = pd.unique(frow * nh + h)
    pair = pd.unique((frow * nh + h) * nd + d)
    items = {
        "hs6": (rh // max(nh, 1), rh % max(nh, 1), nh),
        "dest": (fd_key // max(nd, 1), fd_key % max(nd, 1), nd),
        "pairs": (pair // max(nh * nd, 1), pair % max(nh * nd, 1), nh * nd),
    }
    return _World(acc, year, ymin, ny, prev, nxt, s_ok, sidx, exports, fd_key, fd_val, nd, items)


# --------------------------------------------------------------------------- group statistics


@dataclass
class _Group:
    """Year-by-year activity of one grouping of firm-years; a cell is group × ny + (year − ymin)."""

    g: np.ndarray               # group code of every row, −1 if missing
    cell: np.ndarray            # cell of every row, −1 if missing
    firms: np.ndarray           # per cell
    exporters: np.ndarray
    exports: np.ndarray
    dest_key: np.ndarray        # sorted cell*nd + destination
    dest_val: np.ndarray
    div: dict                   # item -> (D per cell, U per row, cell*nitem+item keys, firm counts), unsorted


def _group(w: _World, g: np.ndarray) -> _Group:
    n = len(g)
    ncell = (int(g.max(initial=-1)) + 1) * w.ny
    cell = np.where(g >= 0, g * w.ny + (w.year - w.ymin), -1)
    ok = cell >= 0
    is_exp = w.exports > 0
    firms = np.bincount(cell[ok], minlength=ncell)
    exporters = np.bincount(cell[ok & is_exp], minlength=ncell)
    exports = np.bincount(cell[ok & is_exp], weights=w.exports[ok & is_exp], minlength=ncell)
    r = w.fd_key // max(w.nd, 1)
    sel = cell[r] >= 0
    dkey = cell[r[sel]] * w.nd + w.fd_key[sel] % max(w.nd, 1)
    dest_key, dest_val, dest_code = _tally(dkey, w.fd_val[sel], sort=True)
    div = {}
    for name, (ir, item, nitem) in w.items.items():
        sel = cell[ir] >= 0
        if name == "dest":  # the same (cell, destination) keys as the destination totals
            keys, inv = dest_key, dest_code
            counts = np.bincount(inv, minlength=len(keys))
        else:
            keys, counts, inv = _tally(cell[ir[sel]] * nitem + item[sel])
        distinct = np.bincount(keys // max(nitem, 1), minlength=ncell)
        sole = counts[inv] == 1  # items this firm alone exports within its group and year
        only_me = np.bincount(ir[sel][sole], minlength=n)
        div[name] = (distinct, only_me, keys, counts)
    return _Group(g, cell, firms, exporters, exports, dest_key, dest_val, div)


def _at(table: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """table[cell] as float, 0 where the cell is −1 or beyond the table (a group with no activity)."""
    ok = (cell >= 0) & (cell < len(table))
    out = np.zeros(len(cell))
    out[ok] = table[cell[ok]]
    return out


def _subset(keys: np.ndarray, vals: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The entries of an unsorted key table that `q` asks for, sorted (a hash filter, then a small sort)."""
    hit = pd.Index(pd.unique(q)).get_indexer(keys) >= 0
    keys, vals = keys[hit], vals[hit]
    order = np.argsort(keys)
    return keys[order], vals[order]


def _query_cell(w: _World, g: np.ndarray) -> np.ndarray:
    """Cell of year t − lag of each row's own year-t group; −1 where the group or the year is missing."""
    return np.where((g >= 0) & w.s_ok, g * w.ny + w.sidx, -1)


# --------------------------------------------------------------------------- measures


def _weights(w: _World, dest_weights: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row i, destination code, share) of the destinations weighting row i's destination-specific scale."""
    r = w.fd_key // max(w.nd, 1)
    d = w.fd_key % max(w.nd, 1)
    share = w.fd_val / w.exports[r]
    if dest_weights == "current":
        return r, d, share
    i = w.nxt[r]
    return i[i >= 0], d[i >= 0], share[i >= 0]


def _dest_scale(w: _World, n: int, wts, qcell: np.ndarray, other: tuple[_Group, np.ndarray] | None,
                base: _Group, own: np.ndarray) -> np.ndarray:
    """Σ_c w_fc ln(1 + peers' exports to c); peers = base group − `other` group − own (where flagged)."""
    i, d, share = wts
    keep = qcell[i] >= 0
    i, d, share = i[keep], d[keep], share[keep]
    peers = _lookup(base.dest_key, base.dest_val, qcell[i] * w.nd + d)
    gross = peers.copy()
    if other is not None:
        grp, ocell = other
        peers -= _lookup(grp.dest_key, grp.dest_val, ocell[i] * w.nd + d)
    p = w.prev[i]
    mine = own[i] & (p >= 0)
    peers[mine] -= _lookup(w.fd_key, w.fd_val, p[mine] * w.nd + d[mine])
    peers = np.where(peers > _ROUNDING * gross, peers, 0.0)  # a difference of sums that should be 0 is 0
    val = np.bincount(i, weights=share * np.log1p(peers), minlength=n)
    return np.where(np.bincount(i, minlength=n) > 0, val, np.nan)


def _scope_measures(w: _World, scope: str, groups: dict, wts) -> dict[str, np.ndarray]:
    n = len(w.year)
    p = w.prev
    has_p = p >= 0
    pp = np.where(has_p, p, 0)
    own_exports = np.where(has_p, w.exports[pp], 0.0)
    own_exporter = (own_exports > 0).astype(float)

    if scope == "cross":
        ind, c2 = groups["industry"], groups["cic2"]
        qcell, jcell = _query_cell(w, c2.g), _query_cell(w, ind.g)
        qcell = np.where(jcell >= 0, qcell, -1)
        # f itself is a cross peer only if in year s it sat in another CIC4 of the same CIC2
        own = has_p & (c2.g[pp] == c2.g) & (ind.g[pp] != ind.g) & (qcell >= 0)
        total = _at(c2.exports, qcell) - _at(ind.exports, jcell) - own * own_exports
        npeers = _at(c2.exporters, qcell) - _at(ind.exporters, jcell) - own * own_exporter
        dest = _dest_scale(w, n, wts, qcell, (ind, jcell), c2, own)
        rows_j = ind.g >= 0
        c2_of_j = np.zeros(int(ind.g.max(initial=-1)) + 1, dtype=np.int64)
        c2_of_j[ind.g[rows_j]] = c2.g[rows_j]
        flagged_prev = np.zeros(n, dtype=bool)
        flagged_prev[p[own]] = True
        div = {}
        for name, (ir, item, nitem) in w.items.items():
            # items of (CIC2, s) that industry j alone exports: not cross information for j's firms
            jkeys, jcounts = ind.div[name][2], ind.div[name][3]
            jc, it = jkeys // max(nitem, 1), jkeys % max(nitem, 1)
            ckey = (c2_of_j[jc // w.ny] * w.ny + jc % w.ny) * nitem + it
            _, n_ind, inv = _tally(ckey)
            only_j = np.bincount(jc[n_ind[inv] == 1], minlength=len(ind.firms))
            # items whose only exporter outside j is f itself (f sat in another CIC4 of the CIC2 in year s)
            sel = flagged_prev[ir]
            only_f = np.zeros(n)
            if sel.any():
                i = w.nxt[ir[sel]]
                q_c2, q_j = qcell[i] * nitem + item[sel], jcell[i] * nitem + item[sel]
                n_c2 = _lookup(*_subset(c2.div[name][2], c2.div[name][3], q_c2), q_c2)
                n_j = _lookup(*_subset(jkeys, jcounts, q_j), q_j)
                only_f = np.bincount(i[(n_c2 - n_j) == 1], minlength=n)
            div[name] = _at(c2.div[name][0], qcell) - _at(only_j, jcell) - own * only_f
    else:
        grp = groups[scope]
        qcell = _query_cell(w, grp.g)
        own = has_p & (grp.g[pp] == grp.g) & (qcell >= 0)  # f was in this group in year s
        total = _at(grp.exports, qcell) - own * own_exports
        npeers = _at(grp.exporters, qcell) - own * own_exporter
        dest = _dest_scale(w, n, wts, qcell, None, grp, own)
        div = {name: _at(grp.div[name][0], qcell) - own * np.where(has_p, grp.div[name][1][pp], 0)
               for name in w.items}

    total = np.where(npeers > 0, np.maximum(total, 0), 0.0)
    mean = np.divide(total, npeers, out=np.zeros(n), where=npeers > 0)
    out = {"scale_total": np.log1p(total), "scale_dest": dest, "scale_mean": np.log1p(mean), "npeers": npeers,
           **{f"div_{k}": np.log1p(np.maximum(v, 0)) for k, v in div.items()}}
    missing = qcell < 0
    return {k: np.where(missing, np.nan, v) for k, v in out.items()}


def _density(w: _World, grp: _Group, how: str) -> np.ndarray:
    qcell = _query_cell(w, grp.g)
    firms, exporters = _at(grp.firms, qcell), _at(grp.exporters, qcell)
    val = np.log1p(exporters) if how == "log_count" else np.divide(
        exporters, firms, out=np.full(len(qcell), np.nan), where=firms > 0)
    return np.where(qcell >= 0, val, np.nan)


def spillover_measures(
    flows: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    lag: int = 1,
    scope: str | Sequence[str] = SCOPES,
    peer_scale: PeerScale = "total",
    peer_diversity: PeerDiversity = "hs6",
    density: Density = "share",
    dest_weights: DestWeights = "current",
    alone: Alone = "zero",
    trade_modes: Collection[int | str] | None = None,
) -> tuple[pd.DataFrame, StepLog]:
    """Leave-one-out spillover measures for every firm-year of `accounts`; returns (table, step log).

    The table is keyed by firm_id, year (the accounts' firm-years, in their order) with the
    columns listed in the module docstring (`columns(scope)`).

    lag: 1 (default; year-t values from t−1 activity, against Manski's reflection problem), 0 for
      the contemporaneous version, or any k ≥ 0.
    scope: peer groups to compute: "industry", "city", "city_industry", "cross" (default: all).
    peer_scale: the headline P_scale: "total" ln(1+Σ peers' exports), "dest" the destination-
      specific version, "count" ln(1+#peers), "mean" ln(1+exports per peer).
    peer_diversity: the headline P_div: distinct "hs6" products, "dest" destinations, or "pairs".
    density: "share" exporters / firms, or "log_count" ln(1+#exporters).
    dest_weights: f's destination shares from year t ("current") or year t−lag ("lagged").
    alone: "zero" (no peers gives 0) or "missing" (no peers gives NaN).
    trade_modes: customs trade modes to keep, e.g. ("10",) for general trade only; None keeps all.
    """
    for name, value in (("peer_scale", peer_scale), ("peer_diversity", peer_diversity), ("density", density),
                        ("dest_weights", dest_weights), ("alone", alone)):
        if value not in _OPTIONS[name]:
            raise ValueError(f"unknown {name} {value!r}; use one of {', '.join(_OPTIONS[name])}")
    if isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 0:
        raise ValueError(f"lag must be a whole number >= 0 (1: last year's peers, 0: contemporaneous), got {lag!r}")
    scopes = _scopes(scope)
    log: StepLog = []
    w = _prepare(flows, accounts, scopes, int(lag), trade_modes, log)
    acc = w.acc
    n = len(acc)

    groups: dict[str, _Group] = {}
    keys = {"industry": ["industry"], "city": ["city"], "city_industry": ["city", "industry"], "cic2": ["cic2"]}
    wanted = {s for s in scopes if s != "cross"} | ({"industry", "cic2"} if "cross" in scopes else set())
    for name in wanted:
        cols = acc[keys[name]]
        g = _codes(cols.iloc[:, 0]) if len(keys[name]) == 1 else np.where(
            cols.isna().any(axis=1), -1, acc.groupby(keys[name], dropna=False, sort=False).ngroup()).astype(np.int64)
        groups[name] = _group(w, g)
    wts = _weights(w, dest_weights)

    out = {"firm_id": acc["firm_id"].to_numpy(), "year": w.year}
    for s in scopes:
        m = _scope_measures(w, s, groups, wts)
        if alone == "missing":
            nobody = m["npeers"] == 0
            m = {k: (v if k == "npeers" else np.where(nobody, np.nan, v)) for k, v in m.items()}
        headline_scale = {"total": m["scale_total"], "dest": m["scale_dest"], "mean": m["scale_mean"],
                          "count": np.log1p(m["npeers"])}[peer_scale]
        if alone == "missing" and peer_scale == "count":
            headline_scale = np.where(m["npeers"] == 0, np.nan, headline_scale)
        prefix = PREFIX[s]
        out[f"{prefix}_scale"] = headline_scale
        out[f"{prefix}_div"] = m[f"div_{peer_diversity}"]
        for k in ("scale_total", "scale_dest", "scale_mean", "npeers", "div_hs6", "div_dest", "div_pairs"):
            out[f"{prefix}_{k}"] = m[k]
    if "industry" in scopes:
        out["density_ind"] = _density(w, groups["industry"], density)
    if "city_industry" in scopes:
        out["density_city_ind"] = _density(w, groups["city_industry"], density)

    no_year = int((~w.s_ok).sum())
    record(log, "spill_year_missing", n, n, f"kept; {no_year} firm-year(s) get missing spillovers: year t-{lag} "
           "not observed in both accounts and flows")
    no_ind = int(acc["industry"].isna().sum())
    record(log, "spill_no_industry", n, n, f"kept; {no_ind} firm-year(s) without an industry get missing "
           "industry, city-industry, cross and density measures")
    if "city" in acc.columns:
        record(log, "spill_no_city", n, n, f"kept; {int(acc['city'].isna().sum())} firm-year(s) without a city get "
               "missing city measures")
    record(log, "spillover", n, n, f"lag={lag}, scope={','.join(scopes)}, peer_scale={peer_scale}, "
           f"peer_diversity={peer_diversity}, density={density}, dest_weights={dest_weights}, alone={alone}, "
           f"trade_modes={None if trade_modes is None else sorted(map(str, trade_modes))}")
    return pd.DataFrame(out)[["firm_id", "year", *columns(scopes)]], log
