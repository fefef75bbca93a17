"""Requests a participant with a valid agreement builds to break the read path rather than the
policy: text the database cannot store, results a media type cannot carry, engine failures that
surface only once rows are produced. Each is a 4xx problem before any byte of a result, never a
500 and never a 200 cut off mid-stream."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import httpx
import pyarrow as pa
import pytest

from connector.audit.export import public_key_verifier
from connector.dataplane import DataPlaneLimits, make_proof
from connector.dataplane.flight import DataFlightServer
from connector.dataplane.sandbox import SandboxLimits
from connector.jobs import JobError
from tests.connector.dsp_world import wait_until

from .conftest import DataSpace, research_permission

NO_SSN = {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["ssn"]}


def _post(space: DataSpace, endpoint: str, token: str, body: bytes,
          content_type: str = "application/json", accept: str | None = None) -> httpx.Response:
    url = endpoint + "/query"
    proof = make_proof(space.consumers["alice"].key, "POST", url, token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, "Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return httpx.post(url, content=body, headers=headers, timeout=60)


# JSON escapes that decode to text no database can store (a lone surrogate cannot be encoded;
# PostgreSQL text cannot hold U+0000), in a string literal, an identifier and a comment.
UNSTORABLE = [
    rb'{"sql": "SELECT \'\ud800\' AS x FROM data"}',
    rb'{"sql": "SELECT 1 AS \"\udfff\" FROM data"}',
    rb'{"sql": "SELECT \'\u0000\' AS x FROM data"}',
    rb'{"sql": "SELECT 1 AS x FROM data -- \udc00"}',
]
# Results the media type cannot carry, found only in non-null values: bytes that are not UTF-8.
UNCARRIABLE = [
    ("SELECT '101'::BIT AS s FROM data", "text/csv"),
    ("SELECT '\\xFF'::BLOB AS s FROM data", "text/csv"),
]


def test_hostile_query_requests_are_refused_before_any_byte(space: DataSpace) -> None:
    transfer = space.transfer(space.agreement(research_permission(NO_SSN)))
    address = space.plane.issue_access(transfer)
    for body in UNSTORABLE:
        response = _post(space, address.endpoint, address.token, body)
        assert response.status_code == 400, (body, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    one = json.dumps({"sql": "SELECT 1 AS x FROM data"}).encode()
    plain = _post(space, address.endpoint, address.token, one, content_type="text/plain")
    assert plain.status_code == 415, plain.text
    for sql, media_type in UNCARRIABLE:
        response = _post(space, address.endpoint, address.token, json.dumps({"sql": sql}).encode(),
                         accept=media_type)
        assert response.status_code == 406, (sql, response.status_code, response.content[:200])
    # an engine failure met while producing the first rows is a problem, not a cut stream
    # (the engine starts fine; the value that does not convert is met after the first rows)
    late = ("SELECT CAST(CASE WHEN a.patient_id = 10 AND b.patient_id = 5 THEN 'x' ELSE '1' END AS INTEGER)"
            " AS n FROM data AS a, data AS b")
    response = _post(space, address.endpoint, address.token, json.dumps({"sql": late}).encode())
    assert response.status_code == 400, response.status_code
    assert response.json()["code"] == "query_failed"
    # nothing above was written half: the log still verifies, and normal reads work
    count = json.dumps({"sql": "SELECT count(*) AS n FROM data"}).encode()
    ok = _post(space, address.endpoint, address.token, count)
    assert ok.status_code == 200
    assert pa.ipc.open_stream(ok.content).read_all().column("n").to_pylist() == [1000]
    assert space.plane.audit.verify(public_key_verifier(space.plane.key.public_key)).intact


def test_a_flight_ticket_with_unstorable_text_is_a_clean_refusal(space: DataSpace) -> None:
    server = DataFlightServer(space.plane)
    server.serve_in_thread()
    try:
        location = f"grpc://127.0.0.1:{server.port}"
        reader = space.reader(space.transfer(space.agreement(research_permission(NO_SSN))))
        with pytest.raises(JobError) as refused:
            reader.flight(location, "SELECT '\ud800' AS x FROM data")
        assert refused.value.status == 400, refused.value
        assert "Traceback" not in str(refused.value)
        assert reader.flight(location, "SELECT count(*) AS n FROM data").num_rows == 1
    finally:
        server.shutdown()


BUDGET = {"leftOperand": "sluis:epsilon", "operator": "lteq", "rightOperand": 1}
REGIONS = {"leftOperand": "keys:region", "operator": "isAnyOf", "rightOperand": ["GR", "NH", "UT", "ZH"]}


@pytest.mark.parametrize("sql", [
    "SELECT region, count(*) AS n, count(*) AS n FROM data GROUP BY region",
    "SELECT count(*) AS region, region FROM data GROUP BY region",
    "SELECT count(*), count(*) FROM data",
])
def test_aggregate_output_columns_of_one_name_are_refused(space: DataSpace, sql: str) -> None:
    # Cells are suppressed and noised by their column: two columns of one name cannot be told
    # apart (under a privacy budget the read used to spend epsilon and then cut the stream).
    transfer = space.transfer(space.agreement(research_permission(BUDGET, REGIONS, action="aggregate")))
    address = space.plane.issue_access(transfer)
    response = _post(space, address.endpoint, address.token, json.dumps({"sql": sql}).encode())
    assert response.status_code == 403, (response.status_code, response.content[:200])
    assert response.json()["code"] in ("aggregate_only", "policy_denied")  # not a plain aggregate
    fine = json.dumps({"sql": "SELECT region, count(*) AS n FROM data GROUP BY region"}).encode()
    counted = _post(space, address.endpoint, address.token, fine)
    assert counted.status_code == 200
    assert counted.headers["Sluis-Epsilon-Spent"] == "0.1"  # the refused query spent nothing


def test_one_consumer_cannot_hold_every_read_slot(make_space: Callable[..., DataSpace]) -> None:
    # A consumer with a valid agreement and long queries would take every slot for up to the
    # watchdog's limit, and every other consumer would wait and then get 503.
    # the long read is stopped by the watchdog; a second read of the same consumer waits its turn
    # (briefly here) and is refused while the first still runs
    limits = DataPlaneLimits(sandbox=SandboxLimits(timeout_seconds=3.0), max_concurrent_reads_per_consumer=1,
                             slot_wait_seconds=0.2)
    space = make_space(limits=limits)
    alice = space.plane.issue_access(space.transfer(space.agreement(research_permission(NO_SSN))))
    bob_transfer = space.transfer(space.agreement(research_permission(NO_SSN), "bob"), "bob")
    long = json.dumps({"sql": "SELECT sum(a.age * b.age * c.age * d.age) AS s"
                              " FROM data AS a, data AS b, data AS c, data AS d"})
    answers: list[int] = []
    running = threading.Thread(
        target=lambda: answers.append(_post(space, alice.endpoint, alice.token, long.encode()).status_code)
    )
    running.start()
    try:
        wait_until(lambda: space.plane._running_by_consumer.get(space.consumers["alice"].did) == 1,
                   "alice's long read to start")
        one = json.dumps({"sql": "SELECT 1 AS x FROM data"}).encode()
        again = _post(space, alice.endpoint, alice.token, one)
        assert again.status_code == 503, again.text
        assert again.json()["code"] == "busy_consumer"
        bob = space.reader(bob_transfer, "bob")
        assert bob.query("SELECT count(*) AS n FROM data").column("n").to_pylist() == [1000]
    finally:
        running.join()
    assert len(answers) == 1
    assert answers[0] in (200, 413)  # finished, or stopped by the watchdog
