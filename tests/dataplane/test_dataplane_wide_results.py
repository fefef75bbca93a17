"""Wide results are built in batches bounded by bytes, not only by rows.

``SELECT ssn AS a1, ..., ssn AS a300 FROM data`` makes every row hundreds of times wider than the
granted one; a fixed row count per batch then built batches of hundreds of megabytes outside
DuckDB's memory limit (for every read running at once). The batch limit here is made small so
that the test's thousand rows show it; the result cap stops such a read early as well.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connector.dataplane import DataPlaneLimits
from connector.dataplane.batch_sizing import DEFAULT_BATCH_BYTES, ENGINE_VECTOR_ROWS, engine_batch_rows
from connector.dataplane.sandbox import SandboxLimits
from connector.jobs import JobError

from .conftest import DataSpace, research_permission

BATCH_BYTES = 64 * 1024
WIDE_TEXT = "SELECT " + ", ".join(f"ssn AS a{i}" for i in range(300)) + " FROM data"
WIDE_NUMBERS = "SELECT " + ", ".join(f"age AS a{i}" for i in range(300)) + " FROM data"


@pytest.mark.parametrize("sql", [WIDE_TEXT, WIDE_NUMBERS])
def test_a_wide_result_comes_in_batches_bounded_by_bytes(
    make_space: Callable[..., DataSpace], sql: str
) -> None:
    space = make_space(limits=DataPlaneLimits(sandbox=SandboxLimits(batch_bytes=BATCH_BYTES)))
    reader = space.reader(space.transfer(space.agreement(research_permission())))
    table = reader.query(sql)
    assert table.num_columns == 300
    assert table.num_rows == 1000
    batches = table.to_batches()
    assert len(batches) > 10
    # a batch is joined up to the bound; one engine batch of a first guess may pass it a little
    assert max(batch.nbytes for batch in batches) <= 2 * BATCH_BYTES
    assert table.column("a7").to_pylist() == table.column("a0").to_pylist()


def test_the_result_cap_stops_a_wide_read_early(make_space: Callable[..., DataSpace]) -> None:
    cap = 256 * 1024
    limits = DataPlaneLimits(sandbox=SandboxLimits(batch_bytes=BATCH_BYTES), max_result_bytes=cap)
    space = make_space(limits=limits)
    transfer = space.transfer(space.agreement(research_permission()))
    with pytest.raises(JobError):
        space.reader(transfer).query(WIDE_TEXT)
    reads = [entry.body for entry in space.plane.audit.entries()
             if entry.body.get("transfer_id") == transfer.id and entry.body.get("kind") == "read"]
    assert len(reads) == 1
    assert reads[0]["status"] == "failed"
    assert reads[0]["rows"] < 1000
    assert reads[0]["bytes"] <= cap + 2 * BATCH_BYTES  # stopped within a batch of the cap


def test_default_engine_batches_stay_near_their_byte_target() -> None:
    limits = SandboxLimits()
    assert limits.batch_bytes == DEFAULT_BATCH_BYTES
    narrow = engine_batch_rows(["BIGINT"] * 3, limits.batch_rows, limits.batch_bytes)
    assert narrow == limits.batch_rows  # three numbers a row: as many rows as before
    numbers = engine_batch_rows(["BIGINT"] * 300, limits.batch_rows, limits.batch_bytes)
    assert numbers * 300 * 8 <= limits.batch_bytes
    text = engine_batch_rows(["VARCHAR"] * 300, limits.batch_rows, limits.batch_bytes)
    assert text <= ENGINE_VECTOR_ROWS
