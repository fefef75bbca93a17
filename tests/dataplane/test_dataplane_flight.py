"""Arrow Flight reads: the same token, proof, checks, limits and audit as the HTTP reads."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pyarrow.flight as flight
import pytest

from connector.dataplane.flight import DataFlightServer
from connector.jobs import JobError

from .conftest import DataSpace, research_permission

FORBID_SSN = {"leftOperand": "sluis:columns", "operator": "isNoneOf", "rightOperand": ["ssn"]}
COUNT_THREE = {"leftOperand": "count", "operator": "lteq", "rightOperand": 3}


@pytest.fixture
def location(space: DataSpace) -> Iterator[str]:
    server = DataFlightServer(space.plane)
    server.serve_in_thread()
    try:
        yield f"grpc://127.0.0.1:{server.port}"
    finally:
        server.shutdown()


def test_flight_reads_what_the_agreement_grants_and_is_audited(space: DataSpace, location: str) -> None:
    reader = space.reader(space.transfer(space.agreement(research_permission(FORBID_SSN, COUNT_THREE))))
    whole = reader.flight(location)
    assert whole.column_names == ["patient_id", "age", "region", "diagnosis"]
    assert whole.num_rows == 1_000
    counts = reader.flight(location, "SELECT region, count(*) AS n FROM data GROUP BY region ORDER BY region")
    assert counts.column("n").to_pylist() == [250, 250, 250, 250]
    with pytest.raises(JobError) as refused:
        reader.flight(location, "SELECT ssn FROM data")
    assert refused.value.status == 403
    reader.flight(location, "SELECT count(*) AS n FROM data")  # the third read
    with pytest.raises(JobError) as spent:
        reader.flight(location, "SELECT count(*) AS n FROM data")
    assert spent.value.status == 403
    reads = [entry.body for entry in space.plane.audit.entries() if entry.body.get("protocol") == "flight"]
    assert [entry["status"] for entry in reads] == ["completed"] * 3


def test_flight_without_a_valid_token_and_proof_is_unauthenticated(space: DataSpace, location: str) -> None:
    transfer = space.transfer(space.agreement(research_permission()))
    client = flight.FlightClient(location)
    before = sum(1 for _ in space.plane.audit.entries())
    for headers in ([], [(b"authorization", b"DPoP forged")]):
        options = flight.FlightCallOptions(headers=headers)
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.do_get(flight.Ticket(f'{{"transfer": "{transfer.id}"}}'.encode()), options).read_all()
    for ticket in (b"not json", b"[]", b'{"transfer": 7}', b"x" * 70_000):
        with pytest.raises(flight.FlightServerError):
            client.do_get(flight.Ticket(ticket)).read_all()
    client.close()
    assert sum(1 for _ in space.plane.audit.entries()) == before


def test_a_flight_read_shows_what_an_http_read_shows_in_its_schema_metadata(
    space: DataSpace, location: str,
) -> None:
    """Both sides see the epsilon a read spent and the noise each column got, whatever the
    protocol: a Flight read carries the HTTP read's disclosure headers in its schema metadata."""
    budget = {"leftOperand": "sluis:epsilon", "operator": "lteq", "rightOperand": 0.5}
    regions = {"leftOperand": "keys:region", "operator": "isAnyOf", "rightOperand": ["GR", "NH", "UT", "ZH"]}
    reader = space.reader(space.transfer(space.agreement(research_permission(budget, regions,
                                                                             action="aggregate"))))
    for spent in ("0.1", "0.2"):
        table = reader.flight(location, "SELECT region, count(*) AS n FROM data GROUP BY region")
        shown = {key.decode(): value.decode() for key, value in (table.schema.metadata or {}).items()}
        assert shown["sluis-epsilon"] == "0.1"
        assert shown["sluis-epsilon-spent"] == spent
        assert shown["sluis-epsilon-budget"] == "0.5"
        assert json.loads(shown["sluis-noise-scales"]) == {"n": 10}
        assert shown["sluis-read-number"] == spent[-1]
        entry = [e.body for e in space.plane.audit.entries() if e.body.get("protocol") == "flight"][-1]
        assert shown["sluis-query-hash"] == entry["query_hash"]
        assert entry["epsilon_spent"] == float(spent)
    plain = space.reader(space.transfer(space.agreement(research_permission(FORBID_SSN))))
    metadata = plain.flight(location, "SELECT count(*) AS n FROM data").schema.metadata or {}
    assert b"sluis-epsilon" not in metadata
    assert b"sluis-query-hash" in metadata
