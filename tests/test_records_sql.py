"""The customs records cleaned and summed on DuckDB (`data.build.engine: duckdb`) against the pandas path (the default).

The independent reference is `measures.quality.clean_records` (pandas, in memory): the same
steps with the same counts, the same flows in the same order (sums within a few ulps: DuckDB's
compensated sum adds a flow's records in the order they reach it), the same panel.
"""

import duckdb
import numpy as np
import pandas as pd
import pytest

from eqexp.build import BuildOptions, build, customs, records_sql
from eqexp.data.synthetic import WorldParams, generate_sources, generate_world
from eqexp.measures import quality

SUM_RTOL = 1e-15  # a few ulps of a sum of a few monthly records


def assert_same_flows(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=["value_usd", "quantity"]), b.drop(columns=["value_usd", "quantity"]))
    for column in ("value_usd", "quantity"):
        np.testing.assert_allclose(b[column], a[column], rtol=SUM_RTOL, atol=0)


def assert_same_build(a, b) -> None:
    assert [s.as_dict() for s in a.log] == [s.as_dict() for s in b.log]  # every step's rows in, out and reason
    pd.testing.assert_frame_equal(a.panel.drop(columns="quality"), b.panel.drop(columns="quality"))
    np.testing.assert_allclose(b.panel["quality"], a.panel["quality"], rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", [{}, {"trade_modes": ["10"]}, {"intermediaries": False}])
def test_records_clean_as_pandas_cleans_them(raw, variant):
    records, _ = customs.records(raw, BuildOptions())
    modes, inter = variant.get("trade_modes"), variant.get("intermediaries", True)
    log_pd, log_db = [], []
    expected = quality.clean_records(records, trade_modes=modes, intermediaries=inter, log=log_pd)
    flows = records_sql.clean_records(records, trade_modes=modes, intermediaries=inter, log=log_db)
    assert log_db == log_pd and len(flows) == len(expected) > 0.4 * len(records)
    assert_same_flows(expected, flows)


def test_records_not_copied_clean_as_the_converted_copy(raw):
    """The build's path: every record with the HS conversion's verdict (`customs.recoded`), cleaned on DuckDB
    without a copy, against pandas on the copy the conversion keeps (`customs.records`)."""
    records, kept, steps = customs.recoded(raw, BuildOptions())
    copy, copy_steps = customs.records(raw, BuildOptions())
    assert steps == copy_steps and 0 < kept.sum() == len(copy) < len(records)  # the conversion drops some records
    log_pd, log_db = [], []
    expected = quality.clean_records(copy, log=log_pd)
    assert_same_flows(expected, records_sql.clean_records(records, kept=kept, log=log_db))
    assert log_db == log_pd


def test_customs_keyed_by_asif_ids_and_without_names(tidy):
    """Integer firm ids (no categorical codes), yearly records; then a file without firm names."""
    records, _ = customs.records(tidy, BuildOptions())
    assert pd.api.types.is_integer_dtype(records["firm_id"])
    for frame in (records, records.drop(columns="firm_name")):
        log_pd, log_db = [], []
        assert_same_flows(quality.clean_records(frame, log=log_pd), records_sql.clean_records(frame, log=log_db))
        assert log_db == log_pd


def test_small_world_panel_equals_the_pandas_path(raw):
    assert_same_build(build(raw), build(raw, {"engine": "duckdb"}))


@pytest.mark.slow
def test_default_world_panel_equals_the_pandas_path_and_a_small_memory_limit_spills(monkeypatch):
    """At the reference size (4.3 M customs records): the DuckDB build equals the pandas build; under a
    64 MB memory limit DuckDB cannot hold the aggregation (with spilling switched off it fails), spills
    to its temporary folder and gives the same panel."""
    world = generate_world(WorldParams())
    raw = generate_sources(world)
    in_memory = build(raw)
    assert_same_build(in_memory, build(raw, {"engine": "duckdb"}))

    records, _ = customs.records(raw, BuildOptions())
    limit = "64MB"
    connect = records_sql.connect

    def without_spilling(memory_limit, spill_to):
        con = connect(memory_limit, spill_to)
        con.execute("SET temp_directory = ''")
        return con

    with monkeypatch.context() as patch:
        patch.setattr(records_sql, "connect", without_spilling)
        with pytest.raises(duckdb.OutOfMemoryException):
            records_sql.clean_records(records, memory_limit=limit)
    del records
    assert_same_build(in_memory, build(raw, {"engine": "duckdb"}, memory_limit=limit))
