"""The customs records' cleaning out of core, on DuckDB: `measures.quality.clean_records` step for step.

Keys, signs, trade modes, intermediaries, the product-year modal unit, products whose unit
changes, and the monthly records summed to firm × hs6 × destination × year run in DuckDB under a
memory limit (`data.memory_limit`), spilling to a temporary folder; only the aggregated flows
return to pandas, in the order pandas would give them (each flow where its first record was).
The steps, their counts and reasons are those of the pandas path.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from collections.abc import Collection

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from eqexp.data.validate import FLOWS, validate
from eqexp.measures import quality
from eqexp.measures.quality import REASONS, hs6_text
from eqexp.steps import StepLog, record

DEFAULT_MEMORY_LIMIT = "4GB"  # DuckDB's own default is 80 % of the machine's memory
KEYS = ("firm_id", "hs6", "destination", "year")


def connect(memory_limit: str | None, spill_to: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit or DEFAULT_MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{spill_to}'")
    con.execute("SET preserve_insertion_order = false")  # the flows' order comes from their first record instead
    # One thread: a flow's records are then summed in one order in every run. With several, which
    # thread sums which chunk depends on scheduling, and the last bits of a sum with it (a rebuilt
    # panel, a replication package, must give the same numbers).
    con.execute("SET threads = 1")
    return con


def clean_records(records: pd.DataFrame, *, kept: np.ndarray | None = None,
                  trade_modes: Collection[int | str] | None = None, intermediaries: bool = True,
                  memory_limit: str | None = None, log: StepLog | None = None) -> pd.DataFrame:
    """Firm × hs6 × destination × year flows (value_usd, quantity) from the customs records `kept` (None: all), as
    `measures.quality.clean_records` gives them from `records[kept]`, without copying the records."""
    validate(records, FLOWS, "customs flows")
    records = records.assign(hs6=hs6_text(records["hs6"]))
    dropped_at = _row_filters(records, kept, trade_modes, intermediaries, log)
    keys = {c: _codes(records[c], sort=c == "unit") for c in (*KEYS, "unit")}
    # An Arrow table over the arrays themselves: the values are not copied (a DataFrame would copy every column into
    # its blocks), and DuckDB scans Arrow without copying either.
    table = pa.table({"row": np.arange(len(records), dtype=np.int64), "dropped_at": dropped_at,
                      **{c: codes for c, (codes, _) in keys.items()},
                      "value_usd": records["value_usd"].to_numpy(np.float64),
                      "quantity": records["quantity"].to_numpy(np.float64)})
    with tempfile.TemporaryDirectory(prefix="eqexp-duckdb-") as spill, connect(memory_limit, spill) as con:
        con.register("records", table)
        con.execute("CREATE VIEW kept AS SELECT * EXCLUDE (dropped_at) FROM records WHERE dropped_at = 0")
        _units(con, log)
        flows = _aggregate(con, Path(spill), log)
    return flows.assign(**{c: _labels(flows[c].to_numpy(), records[c], labels) for c, (_, labels) in keys.items()
                           if c in KEYS})


def _row_filters(records: pd.DataFrame, kept: np.ndarray | None, trade_modes: Collection[int | str] | None,
                 intermediaries: bool, log: StepLog | None) -> np.ndarray:
    """For each record the first row filter that drops it (1, 2, ...; 0: kept; −1: not `kept` before), in the order
    of the pandas steps, each counted on what the ones before it left."""
    steps = [("missing_keys", lambda: quality.missing_keys(records), REASONS["missing_keys"]),
             ("nonpositive", lambda: (records["value_usd"] <= 0) | (records["quantity"] <= 0), REASONS["nonpositive"])]
    if trade_modes is not None:
        steps.append(("trade_mode", lambda: ~quality.in_trade_modes(records, trade_modes),
                      REASONS["trade_mode"].format(modes=sorted({str(m) for m in trade_modes}))))
    if intermediaries and "firm_name" in records.columns:
        steps.append(("intermediaries", lambda: quality.intermediary(records),
                      REASONS["intermediaries"].format(keywords=", ".join(quality.INTERMEDIARY_KEYWORDS))))
    elif intermediaries:
        steps.append(("intermediaries", lambda: np.zeros(len(records), bool), "skipped: no firm_name column"))
    dropped_at = np.zeros(len(records), dtype=np.int8) if kept is None else np.where(kept, 0, -1).astype(np.int8)
    rows = int((dropped_at == 0).sum())
    for i, (name, bad, reason) in enumerate(steps, start=1):
        newly = np.asarray(bad(), dtype=bool) & (dropped_at == 0)
        dropped_at[newly] = i
        record(log, name, rows, rows - int(newly.sum()), reason)
        rows -= int(newly.sum())
    return dropped_at


def _codes(values: pd.Series, sort: bool) -> tuple[np.ndarray, pd.Index]:
    """Integer codes (−1: missing) and their labels; a categorical's own codes, in its categories' order (the
    order pandas sorts it in)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.array.codes.astype(np.int32), values.cat.categories
    codes, labels = pd.factorize(values, sort=sort)
    return codes.astype(np.int32), labels


def _labels(codes: np.ndarray, original: pd.Series, labels: pd.Index):
    """Codes back into the records' own type."""
    if isinstance(original.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(codes, dtype=original.dtype)
    return labels.take(codes).astype(original.dtype)


def _units(con: duckdb.DuckDBPyConnection, log: StepLog | None) -> None:
    """Records off their product-year's modal unit (ties: the first unit in sort order), then products whose unit
    changes over years."""
    con.execute("""CREATE TEMP TABLE modal AS SELECT hs6, year, unit AS modal_unit FROM (
                     SELECT hs6, year, unit, row_number() OVER (PARTITION BY hs6, year ORDER BY n DESC, unit) AS rank
                     FROM (SELECT hs6, year, unit, count(*) AS n FROM kept WHERE unit >= 0 GROUP BY ALL))
                   WHERE rank = 1""")
    con.execute("""CREATE VIEW modal_kept AS SELECT k.* FROM kept k JOIN modal m
                   ON k.hs6 = m.hs6 AND k.year = m.year AND k.unit = m.modal_unit""")
    rows, out = _count(con, "kept"), _count(con, "modal_kept")
    record(log, "unit_not_modal", rows, out, REASONS["unit_not_modal"])
    con.execute("""CREATE TEMP TABLE changing AS SELECT hs6 FROM (SELECT DISTINCT hs6, unit FROM modal_kept)
                   GROUP BY hs6 HAVING count(*) > 1""")
    con.execute("CREATE VIEW units AS SELECT * FROM modal_kept WHERE hs6 NOT IN (SELECT hs6 FROM changing)")
    record(log, "unit_changes", out, _count(con, "units"), REASONS["unit_changes"])


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _aggregate(con: duckdb.DuckDBPyConnection, folder: Path, log: StepLog | None) -> pd.DataFrame:
    """Records summed to flows, each flow where its first record was. fsum is compensated, as pandas' groupby sum,
    but adds in the order records reach the group: the sums agree with pandas' to the last bit or two (a list
    of each flow's records, summed in their order, would agree to the bit but cannot spill).

    One year at a time (a flow lies within one year): DuckDB's hash table holds one year's flows, not all of
    them; the years' flows are then put in their first records' order by a sort, which spills."""
    rows = _count(con, "units")
    # Written to Parquet files in `folder` (the build's temporary folder) and read back: a result set fetched
    # directly is held whole, outside the memory limit, next to its pandas copy.
    years = [y for (y,) in con.execute("SELECT DISTINCT year FROM records ORDER BY year").fetchall()]
    parts = [str(folder / f"flows-{i}.parquet") for i in range(len(years))]
    for year, part in zip(years, parts):
        con.execute(f"""COPY (SELECT firm_id, hs6, destination, year, min(row) AS first_row, fsum(value_usd) AS value_usd,
                                fsum(quantity) AS quantity FROM units WHERE year = {int(year)}
                              GROUP BY firm_id, hs6, destination, year) TO '{part}' (FORMAT parquet)""")
    path = folder / "flows.parquet"
    con.execute(f"COPY (SELECT * EXCLUDE (first_row) FROM read_parquet({parts!r}) ORDER BY first_row) TO '{path}' "
                "(FORMAT parquet)")
    flows = pd.read_parquet(path)
    record(log, "aggregate", rows, len(flows), REASONS["aggregate"])
    return flows
