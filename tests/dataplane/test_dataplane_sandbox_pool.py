"""The attacker's tests for reused sandbox connections: nothing one read leaves in its DuckDB
connection reaches the next read, and a pooled connection never outlives the right to read.

Alice (checker off: the query goes to the engine as sent) tries every way to leave state in
her connection - temporary tables, macros (one shadowing a catalog function), prepared
statements, variables, sequences, types, schemas, attached databases, ``SET search_path``,
a replaced ``data`` view, an open transaction, a fixed random seed. Bob then reads the same
granted file (same projection: the connection would be shared) and sees a pristine
connection; his clean reads do reuse connections, so the test is not vacuous.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connector.dataplane import make_proof
from connector.dataplane.connections import SandboxLimits, blank_connection
from connector.dataplane.errors import ResultTooLarge
from connector.dataplane.granted import GrantedFile
from connector.dataplane.sandbox import Sandbox
from connector.dataplane.sandbox_pool import SandboxPool, _leftover
from connector.watchdog import Watchdog

from .conftest import DataSpace, research_permission

NO_SSN = {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["ssn"]}
# Everything a read could leave behind in its connection, each as seen from the next read
# (catalog functions qualified with their system schema, so a macro cannot shadow them).
STATE = """
SELECT list(x ORDER BY x) AS state FROM (
  SELECT 'database:' || database_name AS x FROM system.main.duckdb_databases()
  UNION ALL SELECT 'schema:' || database_name || '.' || schema_name FROM system.main.duckdb_schemas()
  UNION ALL SELECT 'table:' || schema_name || '.' || table_name FROM system.main.duckdb_tables()
  UNION ALL SELECT 'view:' || view_name || ':' || sql FROM system.main.duckdb_views() WHERE NOT internal
  UNION ALL SELECT 'function:' || function_name FROM system.main.duckdb_functions() WHERE NOT internal
  UNION ALL SELECT 'sequence:' || sequence_name FROM system.main.duckdb_sequences()
  UNION ALL SELECT 'type:' || type_name FROM system.main.duckdb_types() WHERE NOT internal
  UNION ALL SELECT 'prepared:' || name FROM system.main.duckdb_prepared_statements()
  UNION ALL SELECT 'variable:' || name FROM system.main.duckdb_variables()
  UNION ALL SELECT 'setting:' || name || '=' || coalesce(value, '') FROM system.main.duckdb_settings()
  UNION ALL SELECT 'current:' || current_database() || '.' || current_schema()
)
"""
ATTACKS = [
    "CREATE TEMP TABLE stash AS SELECT * FROM data",
    "CREATE TABLE stash AS SELECT * FROM data",
    "CREATE MACRO stash() AS 42",
    "CREATE TEMP MACRO duckdb_tables() AS TABLE SELECT 1 AS x",
    "PREPARE stash AS SELECT * FROM data",
    "SET VARIABLE stash = (SELECT list(diagnosis) FROM data)",
    "CREATE SEQUENCE stash",
    "CREATE TYPE stash AS ENUM ('a')",
    "CREATE SCHEMA stash",
    "CREATE SCHEMA stash; SET schema = 'stash'",
    "ATTACH ':memory:' AS stash",
    "SET search_path = 'temp'",
    "CREATE OR REPLACE VIEW data AS SELECT 'PLANTED' AS diagnosis",
    "CREATE TEMP VIEW data AS SELECT 'PLANTED' AS diagnosis",
    "BEGIN TRANSACTION; CREATE TEMP TABLE stash AS SELECT 1 AS x",
]


def _query(space: DataSpace, consumer: str, endpoint: str, token: str, sql: str) -> httpx.Response:
    url = endpoint + "/query"
    key = space.consumers[consumer].key
    headers = {"Authorization": f"DPoP {token}", "DPoP": make_proof(key, "POST", url, token)}
    return httpx.post(url, json={"sql": sql}, headers=headers, timeout=60)


def _value(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    return pa.ipc.open_stream(response.content).read_all().column(0)[0].as_py()


def _addresses(space: DataSpace) -> tuple[tuple[str, str], tuple[str, str]]:
    alice = space.plane.issue_access(space.transfer(space.agreement(research_permission(NO_SSN))))
    bob_agreement = space.agreement(research_permission(NO_SSN), consumer="bob")
    bob = space.plane.issue_access(space.transfer(bob_agreement, consumer="bob"))
    return (alice.endpoint, alice.token), (bob.endpoint, bob.token)


def test_clean_reads_of_one_granted_file_share_a_connection_across_consumers(space: DataSpace) -> None:
    (alice_url, alice_token), (bob_url, bob_token) = _addresses(space)
    assert _value(_query(space, "alice", alice_url, alice_token, "SELECT count(*) AS n FROM data")) == 1000
    reused = space.plane.sandboxes.stats.reused
    assert _value(_query(space, "bob", bob_url, bob_token, "SELECT count(*) AS n FROM data")) == 1000
    assert space.plane.sandboxes.stats.reused == reused + 1


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_state_one_read_leaves_reaches_the_next(space: DataSpace, attack: str) -> None:
    space.plane.check_sql = False
    (alice_url, alice_token), (bob_url, bob_token) = _addresses(space)
    pristine = _value(_query(space, "bob", bob_url, bob_token, STATE))
    discarded = space.plane.sandboxes.stats.discarded
    response = _query(space, "alice", alice_url, alice_token, f"{attack}; SELECT 1 AS x")
    assert response.status_code < 500, response.text
    assert space.plane.sandboxes.stats.discarded == discarded + 1  # her connection was not kept
    for _ in range(3):  # whichever idle connection bob gets, it is pristine
        assert _value(_query(space, "bob", bob_url, bob_token, STATE)) == pristine
    diagnoses = _query(space, "bob", bob_url, bob_token, "SELECT DISTINCT diagnosis FROM data")
    assert "PLANTED" not in str(pa.ipc.open_stream(diagnoses.content).read_all().column(0).to_pylist())
    assert _query(space, "bob", bob_url, bob_token, "SELECT * FROM stash").status_code == 400


def test_a_seed_one_read_sets_does_not_fix_the_next_reads_random(space: DataSpace) -> None:
    space.plane.check_sql = False
    (alice_url, alice_token), (bob_url, bob_token) = _addresses(space)
    with duckdb.connect() as seeded:
        seeded.execute("SELECT setseed(0.25)").fetchall()
        predicted = seeded.execute("SELECT random()").fetchall()[0][0]
    assert _query(space, "alice", alice_url, alice_token, "SELECT setseed(0.25) AS s").status_code == 200
    assert space.plane.sandboxes.idle_count() >= 1  # a SELECT: the connection was kept, reseeded
    assert _value(_query(space, "bob", bob_url, bob_token, "SELECT random() AS r")) != predicted


# Everything that reads or sets DuckDB's random state. A checked read skips the reseed when it
# gives its connection back, which is sound only while the checker lets none of these through.
RANDOM_STATE = [
    "SELECT setseed(0.25) AS s",
    "SELECT random() AS r",
    "SELECT uuid() AS u",
    "SELECT gen_random_uuid() AS u",
    "SELECT count(*) AS n FROM data USING SAMPLE 10",
    "SELECT count(*) AS n FROM data USING SAMPLE 10% (bernoulli)",
    "SELECT count(*) AS n FROM data TABLESAMPLE 10%",
    "SELECT age FROM data ORDER BY random() LIMIT 1",
    "SELECT list_shuffle([1, 2, 3]) AS l",
    "SELECT age FROM (SELECT age, random() AS r FROM data) AS t WHERE r < 0.5",
]


@pytest.mark.parametrize("attack", RANDOM_STATE)
def test_with_the_checker_on_no_read_reaches_the_random_state(space: DataSpace, attack: str) -> None:
    (alice_url, alice_token), _ = _addresses(space)
    response = _query(space, "alice", alice_url, alice_token, attack)
    assert response.status_code in (400, 403), response.text
    assert response.json()["code"] not in ("query_failed",)  # refused by the checker, not the engine


def test_a_read_after_revocation_is_refused_though_a_connection_for_its_file_is_idle(
    space: DataSpace,
) -> None:
    agreement = space.agreement(research_permission(NO_SSN))
    first, second = space.transfer(agreement), space.transfer(agreement, job_id="job-2")
    a, b = space.plane.issue_access(first), space.plane.issue_access(second)
    assert _value(_query(space, "alice", a.endpoint, a.token, "SELECT count(*) AS n FROM data")) == 1000
    assert _value(_query(space, "alice", b.endpoint, b.token, "SELECT count(*) AS n FROM data")) == 1000
    assert space.plane.sandboxes.idle_count() >= 1
    # terminated in the contract state only (no revoke call): the connection is still idle
    space.state.terminate_agreement(agreement)
    refused = _query(space, "alice", b.endpoint, b.token, "SELECT count(*) AS n FROM data")
    assert refused.status_code == 403
    assert refused.json()["code"] == "agreement_terminated"
    assert space.plane.sandboxes.idle_count() >= 1
    # revocation drops the idle connections of every file the transfer read, at once
    space.plane.revoke(first.id)
    assert space.plane.sandboxes.idle_count() == 0
    revoked = _query(space, "alice", a.endpoint, a.token, "SELECT count(*) AS n FROM data")
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "token_inactive"


def test_a_changed_asset_is_read_through_a_connection_of_its_own(space: DataSpace) -> None:
    address = space.plane.issue_access(space.transfer(space.agreement(research_permission(NO_SSN))))
    count = "SELECT count(*) AS n FROM data"
    assert _value(_query(space, "alice", address.endpoint, address.token, count)) == 1000
    assert space.plane.sandboxes.idle_count() == 1
    pq.write_table(pa.table({"patient_id": [1], "age": [30], "region": ["NH"], "diagnosis": ["E11"],
                             "ssn": ["SSN-x"]}), space.data_path)
    assert _value(_query(space, "alice", address.endpoint, address.token, count)) == 1
    assert space.plane.sandboxes.stats.reused == 0  # the new version got a connection of its own


def _granted(tmp_path: Path) -> GrantedFile:
    path = tmp_path / "granted.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    return GrantedFile(path, ("x",), "key")


def test_idle_connections_expire(tmp_path: Path) -> None:
    now = [0.0]
    pool = SandboxPool(SandboxLimits(), clock=lambda: now[0])
    try:
        granted = _granted(tmp_path)
        pool.give_back(granted, pool.take(granted), None)
        assert pool.idle_count("key") == 1
        now[0] += SandboxPool.IDLE_SECONDS + 1
        pool.give_back(granted, pool.take(granted), None)
        assert (pool.stats.expired, pool.stats.reused, pool.stats.opened) == (1, 0, 2)
    finally:
        pool.close()


def test_a_connection_left_in_a_transaction_is_not_reused(tmp_path: Path) -> None:
    connection = blank_connection(SandboxLimits())
    try:
        assert _leftover(connection) is None
        connection.execute("BEGIN TRANSACTION")
        assert _leftover(connection) == "open transaction"
    finally:
        connection.close()


def test_a_read_stopped_by_the_watchdog_does_not_give_its_connection_back(tmp_path: Path) -> None:
    path = tmp_path / "granted.parquet"
    pq.write_table(pa.table({"x": list(range(2000))}), path)
    granted = GrantedFile(path, ("x",), "key")
    limits = SandboxLimits(timeout_seconds=0.2)
    pool, watchdog = SandboxPool(limits), Watchdog()
    try:
        with Sandbox(granted, limits, pool, watchdog) as sandbox:
            relation = sandbox.bind("SELECT sum(a.x * b.x * c.x) AS s FROM data AS a, data AS b, data AS c")
            with pytest.raises(ResultTooLarge):
                list(sandbox.batches(sandbox.stream(relation)))
        assert pool.idle_count() == 0
        assert pool.stats.reasons == {"interrupted": 1}
    finally:
        pool.close()
        watchdog.close()


def test_a_cancelled_alarm_never_fires() -> None:
    watchdog = Watchdog()
    fired: list[str] = []
    last = threading.Event()
    try:
        watchdog.arm(0.01, lambda: fired.append("cancelled")).cancel()
        watchdog.arm(0.02, lambda: fired.append("armed"))
        watchdog.arm(0.03, last.set)
        assert last.wait(30)
        assert fired == ["armed"]  # alarms fire in deadline order, so the first had its turn
    finally:
        watchdog.close()


def test_concurrent_reads_of_one_granted_file_each_get_a_connection_of_their_own(space: DataSpace) -> None:
    (alice_url, alice_token), _ = _addresses(space)
    answers: list[object] = []

    def reads() -> None:
        for _ in range(3):
            answers.append(_value(_query(space, "alice", alice_url, alice_token,
                                         "SELECT count(*) AS n FROM data")))

    threads = [threading.Thread(target=reads) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [1000] * 12
    assert space.plane.sandboxes.idle_count() <= SandboxPool.MAX_IDLE_PER_FILE
    stats = space.plane.sandboxes.stats
    assert stats.opened + stats.reused == 12
