"""The data plane under hostile SQL, bodies and proofs, with a valid token for a live transfer.

Every refused read is a clean 4xx problem naming ``sql`` (or the credential), no read is
counted for it, the asset's file is untouched, and a proper read still works afterwards.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pyarrow as pa
import pytest

from connector.dataplane.tokens import make_proof
from connector.identity import KeyPair
from tests.robustness.hostile import Rejection, Reply, assert_rejected, http
from tests.robustness.worlds import TABLE_ROWS, ConnectorWorld

ARROW = "application/vnd.apache.arrow.stream"

HOSTILE_SQL = {
    "two-statements": "SELECT meter FROM data; SELECT kwh FROM data",
    "drop-after-select": "SELECT * FROM data; DROP TABLE data",
    "comment-smuggled": "SELECT * FROM data; -- harmless\nDELETE FROM data",
    "copy-out": "COPY (SELECT * FROM data) TO 'stolen.csv'",
    "read-parquet-any-file": "SELECT * FROM read_parquet('/etc/passwd')",
    "read-parquet-own-file": "SELECT * FROM read_parquet('readings/readings.parquet')",
    "read-csv": "SELECT * FROM read_csv('/etc/passwd')",
    "glob": "SELECT * FROM glob('/*')",
    "attach": "ATTACH '/tmp/evil.duckdb' AS evil",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "set": "SET enable_external_access = true",
    "pragma": "PRAGMA database_list",
    "create": "CREATE TABLE x AS SELECT * FROM data",
    "insert": "INSERT INTO data VALUES ('m', 'NH', 1.0)",
    "not-sql": "this is not SQL at all",
    "unknown-column": "SELECT password FROM data",
    "unknown-table": "SELECT * FROM duckdb_settings()",
    "nul-byte": "SELECT meter FROM data\x00; DROP TABLE data",
    "very-long": "SELECT meter FROM data WHERE " + " OR ".join(f"kwh = {i}" for i in range(20_000)),
    "deeply-nested": "SELECT " + "(" * 5_000 + "1" + ")" * 5_000 + " FROM data",
    "empty": "   ",
}

BAD_SQL_VALUES: dict[str, Any] = {
    "number": 42,
    "list": ["SELECT meter FROM data"],
    "object": {"sql": "SELECT meter FROM data"},
    "null": None,
    "bool": True,
}


def _query(world: ConnectorWorld, body: bytes, key: KeyPair | None = None, proof: str | None = None) -> Reply:
    url = world.data_endpoint + "/query"
    headers = {
        "Authorization": f"DPoP {world.data_token}",
        "DPoP": proof or make_proof(key or world.consumer_key, "POST", url, world.data_token),
        "Content-Type": "application/json",
        "Accept": ARROW,
    }
    return Reply.of(http().post(url, content=body, headers=headers))


def _reads_and_file(world: ConnectorWorld) -> tuple[Any, str]:
    rows = world.snapshot()
    data = world.provider.config.dataplane.data_root / "readings" / "readings.parquet"
    return rows, hashlib.sha256(data.read_bytes()).hexdigest()


def _good_read_still_works(world: ConnectorWorld) -> None:
    reply = _query(world, json.dumps({"sql": "SELECT meter, kwh FROM data"}).encode())
    assert reply.status == 200, reply.describe()
    table = pa.ipc.open_stream(pa.py_buffer(reply.body)).read_all()
    assert table.num_rows == TABLE_ROWS


@pytest.mark.parametrize("sql", list(HOSTILE_SQL.values()), ids=list(HOSTILE_SQL))
def test_ai_job_cannot_run_anything_but_one_select_over_its_view(
    connectors: ConnectorWorld, sql: str
) -> None:
    before = _reads_and_file(connectors)
    reply = _query(connectors, json.dumps({"sql": sql}).encode())
    assert_rejected(reply, Rejection(statuses={400, 403, 413}), f"query {sql[:50]!r}")
    assert _reads_and_file(connectors) == before, f"refused query {sql[:50]!r} changed state or the file"
    _good_read_still_works(connectors)


@pytest.mark.parametrize("value", list(BAD_SQL_VALUES.values()), ids=list(BAD_SQL_VALUES))
def test_query_body_with_a_non_string_sql_names_the_field(connectors: ConnectorWorld, value: Any) -> None:
    reply = _query(connectors, json.dumps({"sql": value}).encode())
    assert_rejected(reply, Rejection(statuses={400}, fields={"sql"}), f"sql={value!r}")


def test_query_body_with_extra_fields_is_not_a_server_error(connectors: ConnectorWorld) -> None:
    body = {"sql": "SELECT meter FROM data", "limit": -1, "format": {"a": [1]}, "__proto__": {}}
    reply = _query(connectors, json.dumps(body).encode())
    assert reply.status < 500, reply.describe()
    if reply.status >= 400:
        assert_rejected(reply, Rejection(), "query with extra fields")


def test_a_proof_signed_by_another_key_is_refused(connectors: ConnectorWorld) -> None:
    before = _reads_and_file(connectors)
    reply = _query(connectors, b'{"sql": "SELECT meter FROM data"}', key=KeyPair.generate())
    assert_rejected(reply, Rejection(statuses={401, 403}), "a proof by a stranger's key")
    assert _reads_and_file(connectors) == before


def test_a_replayed_proof_is_refused(connectors: ConnectorWorld) -> None:
    url = connectors.data_endpoint + "/query"
    proof = make_proof(connectors.consumer_key, "POST", url, connectors.data_token)
    first = _query(connectors, b'{"sql": "SELECT meter FROM data"}', proof=proof)
    assert first.status == 200, first.describe()
    before = _reads_and_file(connectors)
    again = _query(connectors, b'{"sql": "SELECT meter FROM data"}', proof=proof)
    assert_rejected(again, Rejection(statuses={401, 403}), "a replayed proof")
    assert _reads_and_file(connectors) == before


def test_a_proof_for_another_url_is_refused(connectors: ConnectorWorld) -> None:
    proof = make_proof(connectors.consumer_key, "GET", connectors.data_endpoint, connectors.data_token)
    reply = _query(connectors, b'{"sql": "SELECT meter FROM data"}', proof=proof)
    assert_rejected(reply, Rejection(statuses={401, 403}), "a proof made for GET of the view")


def test_a_tampered_token_is_refused(connectors: ConnectorWorld) -> None:
    head, payload, signature = connectors.data_token.split(".")
    forged = f"{head}.{payload}.{signature[::-1]}"
    url = connectors.data_endpoint
    headers = {
        "Authorization": f"DPoP {forged}",
        "DPoP": make_proof(connectors.consumer_key, "GET", url, forged),
    }
    with httpx.Client(timeout=60) as client:
        reply = Reply.of(client.get(url, headers=headers))
    assert_rejected(reply, Rejection(statuses={401, 403}), "a token with a changed signature")


def test_an_unsupported_accept_header_is_a_clean_4xx_or_a_default(connectors: ConnectorWorld) -> None:
    url = connectors.data_endpoint
    headers = {**connectors.data_auth("GET", url), "Accept": "application/x-no-such-format"}
    with httpx.Client(timeout=60) as client:
        reply = Reply.of(client.get(url, headers=headers))
    assert reply.status < 500, reply.describe()
    if reply.status >= 400:
        assert_rejected(reply, Rejection(statuses={406}), "Accept: application/x-no-such-format")


@pytest.mark.parametrize("case", ["stranger-key", "no-proof", "proof-for-another-url"])
def test_a_refused_token_refresh_leaves_the_token_usable(connectors: ConnectorWorld, case: str) -> None:
    url = connectors.data_endpoint + "/token/refresh"
    token = connectors.data_token
    if case == "stranger-key":
        headers = {
            "Authorization": f"DPoP {token}",
            "DPoP": make_proof(KeyPair.generate(), "POST", url, token),
        }
    elif case == "no-proof":
        headers = {"Authorization": f"DPoP {token}"}
    else:
        headers = {
            "Authorization": f"DPoP {token}",
            "DPoP": make_proof(connectors.consumer_key, "POST", connectors.data_endpoint, token),
        }
    before = _reads_and_file(connectors)
    reply = Reply.of(http().post(url, headers=headers))
    assert_rejected(reply, Rejection(statuses={400, 401, 403}), f"token refresh ({case})")
    assert _reads_and_file(connectors) == before
    _good_read_still_works(connectors)


def test_one_proof_sent_many_times_at_once_reads_once(connectors: ConnectorWorld) -> None:
    """The proof-of-possession replay check is atomic: racing copies of one proof read once."""
    from concurrent.futures import ThreadPoolExecutor

    url = connectors.data_endpoint + "/query"
    token = connectors.data_token
    proof = make_proof(connectors.consumer_key, "POST", url, token)
    body = b'{"sql": "SELECT meter FROM data"}'

    def send(_: int) -> Reply:
        return _query(connectors, body, proof=proof)

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(send, range(8)))
    assert sum(reply.status == 200 for reply in replies) == 1, [r.describe()[:120] for r in replies]
    for reply in replies:
        if reply.status != 200:
            assert_rejected(reply, Rejection(statuses={401, 403}), "a racing copy of a used proof")
