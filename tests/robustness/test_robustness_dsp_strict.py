"""Every DSP endpoint reads its input strictly and totally: a DSP error for anything malformed,
never a 500, never a stored half-message.

First the encodings that used to reach the database or the response renderer (lone surrogates,
NUL, bytes that are not UTF-8, ``NaN``, a key given twice), the ``@context`` forms the official
schemas do not allow and bodies declared as something other than JSON, on every POST endpoint.
Then paths and methods that match no DSP route. Last, hypothesis mutates the official DSP
2025-1 example messages member by member (fixed seed, bounded examples) and checks each answer
against the official schemas: a message the schemas refuse must be refused with a 400.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.connector.conftest import OfficialSchemas
from tests.robustness.hostile import Reply, http
from tests.robustness.targets import UNKNOWN_ID
from tests.robustness.worlds import ConnectorWorld
from vocab import dsp

HYPOTHESIS_EXAMPLES = 60
UNBOUND_CALLBACK = "http://127.0.0.1:9/dsp"
CONTEXT = dsp.DSP_CONTEXT_URL

# (official example, endpoint, error type): every message a connector receives over DSP
NEG, TRA = f"/negotiations/{UNKNOWN_ID}", f"/transfers/{UNKNOWN_ID}"
CNE = "ContractNegotiationError"
OFFICIAL: list[tuple[str, str, str]] = [
    ("catalog/catalog-request-message.json", "/catalog/request", "CatalogError"),
    ("negotiation/contract-request-message_initial.json", "/negotiations/request", CNE),
    ("negotiation/contract-request-message.json", f"{NEG}/request", CNE),
    ("negotiation/contract-offer-message.json", f"{NEG}/offers", CNE),
    ("negotiation/contract-agreement-message.json", f"{NEG}/agreement", CNE),
    ("negotiation/contract-agreement-verification-message.json", f"{NEG}/agreement/verification", CNE),
    ("negotiation/contract-negotiation-event-message.json", f"{NEG}/events", CNE),
    ("negotiation/contract-negotiation-termination-message.json", f"{NEG}/termination", CNE),
    ("transfer/transfer-request-message.json", "/transfers/request", "TransferError"),
    ("transfer/transfer-start-message.json", f"{TRA}/start", "TransferError"),
    ("transfer/transfer-suspension-message.json", f"{TRA}/suspension", "TransferError"),
    ("transfer/transfer-completion-message.json", f"{TRA}/completion", "TransferError"),
    ("transfer/transfer-termination-message.json", f"{TRA}/termination", "TransferError"),
]


def _post(
    world: ConnectorWorld, path: str, body: bytes, content_type: str | None = "application/json"
) -> Reply:
    headers = world.dsp_auth()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Reply.of(http().post(f"{world.provider.dsp}{path}", content=body, headers=headers))


def _assert_dsp_error(reply: Reply, error_type: str, statuses: set[int], what: str) -> dict[str, Any]:
    assert reply.status in statuses, f"{what}: {reply.describe()}"
    body = json.loads(reply.body)
    assert isinstance(body, dict), f"{what}: not a JSON body: {reply.describe()}"
    assert body.get("@type") == error_type, f"{what}: {reply.describe()}"
    assert body.get("@context") == [CONTEXT], f"{what}: {reply.describe()}"
    assert isinstance(body.get("code"), str), f"{what}: {reply.describe()}"
    assert all(isinstance(reason, str) for reason in body.get("reason", [])), f"{what}: {reply.describe()}"
    return body


def _raw(value: dict[str, Any], member: str, raw_json: str) -> bytes:
    """``value`` as JSON with ``member``'s value written as the raw JSON text ``raw_json``."""
    text = json.dumps({**value, member: "__RAW__"})
    return text.replace('"__RAW__"', raw_json).encode()


ENDPOINTS: list[tuple[str, str, dict[str, Any]]] = [
    ("/catalog/request", "CatalogError", dsp.catalog_request_message()),
    (
        "/negotiations/request",
        "ContractNegotiationError",
        dsp.contract_request_message(
            "urn:uuid:strict-1",
            {"@id": "urn:sluis:offer:s", "@type": "Offer", "permission": [{"action": "use"}], "target": "x"},
            callback_address=UNBOUND_CALLBACK,
        ),
    ),
    (f"/negotiations/{UNKNOWN_ID}/termination", "ContractNegotiationError",
     dsp.negotiation_termination_message(UNKNOWN_ID, "urn:uuid:strict-2")),
    ("/transfers/request", "TransferError",
     dsp.transfer_request_message("urn:uuid:strict-3", UNKNOWN_ID, "HttpData-PULL", UNBOUND_CALLBACK)),
    (f"/transfers/{UNKNOWN_ID}/completion", "TransferError",
     dsp.transfer_completion_message(UNKNOWN_ID, "urn:uuid:strict-4")),
]  # fmt: skip

HOSTILE_BODIES: dict[str, tuple[str, str]] = {
    # name: (member, raw JSON written as its value)
    "lone high surrogate": ("@type", '"\\ud800"'),
    "lone low surrogate in an id": ("@id", '"urn:uuid:\\udfff"'),
    "surrogate in a key": ("@type", '{"\\ud83d": 1}'),
    "NUL in a string": ("@id", '"urn:uuid:a\\u0000b"'),
    "NaN": ("@id", "NaN"),
    "Infinity": ("@id", "-Infinity"),
    "a number that overflows to infinity": ("@id", "1e400"),
    "context as a string": ("@context", json.dumps(CONTEXT)),
    "context as an object": ("@context", json.dumps({"@vocab": "https://example.org/"})),
    "inline context in the array": ("@context", json.dumps([CONTEXT, {"@vocab": "https://example.org/"}])),
    "context without the DSP context": ("@context", json.dumps(["https://www.w3.org/ns/odrl.jsonld"])),
    "empty context": ("@context", "[]"),
    "context as a number": ("@context", "2025"),
}


@pytest.mark.parametrize(("path", "error_type", "message"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
@pytest.mark.parametrize("hostile", sorted(HOSTILE_BODIES))
def test_malformed_text_and_context_forms_are_dsp_errors(
    connectors: ConnectorWorld, path: str, error_type: str, message: dict[str, Any], hostile: str
) -> None:
    member, raw_json = HOSTILE_BODIES[hostile]
    before = connectors.snapshot()
    reply = _post(connectors, path, _raw(message, member, raw_json))
    body = _assert_dsp_error(reply, error_type, {400}, f"{hostile} at {path}")
    if "context" in hostile:
        assert "@context" in " ".join(body["reason"])
    assert connectors.snapshot() == before


RAW_BODIES: dict[str, bytes] = {
    "invalid UTF-8": b'{"@context": ["' + CONTEXT.encode() + b'"], "@type": "\xff\xfe"}',
    "byte-order mark": b"\xef\xbb\xbf" + json.dumps(dsp.catalog_request_message()).encode(),
    "a key twice": ('{"@context": ["' + CONTEXT + '"], "@type": "CatalogRequestMessage", '
                    '"@type": "ContractRequestMessage"}').encode(),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RAW_BODIES))
def test_bodies_that_are_not_one_reading_of_json_are_refused(connectors: ConnectorWorld, name: str) -> None:
    reply = _post(connectors, "/catalog/request", RAW_BODIES[name])
    _assert_dsp_error(reply, "CatalogError", {400}, name)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
     "application/json; charset=latin-1", "text/html", "", "application/xml"],
)  # fmt: skip
@pytest.mark.parametrize(("path", "error_type", "message"), ENDPOINTS[:2], ids=[e[0] for e in ENDPOINTS[:2]])
def test_a_body_declared_as_something_else_than_json_is_refused(
    connectors: ConnectorWorld, path: str, error_type: str, message: dict[str, Any], content_type: str
) -> None:
    before = connectors.snapshot()
    reply = _post(connectors, path, json.dumps(message).encode(), content_type)
    body = _assert_dsp_error(reply, error_type, {400}, f"Content-Type {content_type!r}")
    assert "Content-Type" in " ".join(body["reason"])
    assert connectors.snapshot() == before


@pytest.mark.parametrize("content_type", ["application/ld+json", "application/json; charset=utf-8", None])
def test_json_declared_in_its_usual_ways_is_read(
    connectors: ConnectorWorld, content_type: str | None
) -> None:
    reply = _post(
        connectors, "/catalog/request", json.dumps(dsp.catalog_request_message()).encode(), content_type
    )
    assert reply.status == 200, reply.describe()


@pytest.mark.parametrize(
    ("method", "path", "status", "error_type"),
    [
        ("GET", "", 404, "CatalogError"),
        ("GET", "/nothing", 404, "CatalogError"),
        ("POST", "/catalog", 404, "CatalogError"),
        ("GET", "/catalog/request", 405, "CatalogError"),
        ("PUT", "/negotiations/request", 405, "ContractNegotiationError"),
        ("POST", f"/negotiations/{UNKNOWN_ID}/unknown", 404, "ContractNegotiationError"),
        ("DELETE", f"/transfers/{UNKNOWN_ID}", 405, "TransferError"),
        ("POST", "/transfers", 404, "TransferError"),
    ],
)
def test_paths_and_methods_matching_no_dsp_route_answer_a_dsp_error(
    connectors: ConnectorWorld, method: str, path: str, status: int, error_type: str
) -> None:
    reply = Reply.of(
        http().request(method, f"{connectors.provider.dsp}{path}", headers=connectors.dsp_auth())
    )
    _assert_dsp_error(reply, error_type, {status}, f"{method} {path}")
    if status == 405:
        assert reply.headers.get("allow"), reply.describe()
        if "GET" in reply.headers["allow"]:
            assert "HEAD" in reply.headers["allow"].split(", "), reply.describe()


# ---- property-based: the official examples, mutated, judged by the official schemas ----------

_HOSTILE_TEXT = st.text(
    alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=24
) | st.sampled_from(
    ["", "\ud800", "a\x00b", "\udfff\ud800", "urn:uuid:" + "9" * 300, "http://127.0.0.1:5432/"]
)
_JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | _HOSTILE_TEXT
)
_HOSTILE_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_HOSTILE_TEXT, inner, max_size=3),
    max_leaves=8,
)
_CONTEXTS = st.sampled_from(
    [[CONTEXT], CONTEXT, [CONTEXT, "https://w3id.org/edc/dspace/v0.0.1"], [], [{"@vocab": "x"}], {"x": 1}, 7,
     ["https://www.w3.org/ns/odrl.jsonld"], [CONTEXT, CONTEXT]]
)  # fmt: skip


def _mutations(example: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    members = sorted(example)

    def mutate(data: tuple[str, str, Any, Any]) -> dict[str, Any]:
        operation, member, value, context = data
        mutated = json.loads(json.dumps(example))
        if operation == "drop":
            mutated.pop(member, None)
        elif operation == "replace":
            mutated[member] = value
        elif operation == "add":
            mutated[f"https://example.org/extra/{len(member)}"] = value
        elif operation == "context":
            mutated["@context"] = context
        return mutated

    return st.tuples(
        st.sampled_from(["drop", "replace", "add", "context", "keep"]),
        st.sampled_from(members),
        _HOSTILE_VALUES,
        _CONTEXTS,
    ).map(mutate)


def _encode(message: dict[str, Any]) -> bytes:
    # surrogates must travel as JSON escapes: ensure_ascii writes them so
    return json.dumps(message, ensure_ascii=True).encode()


def _load_official(conformance_dir: Path) -> tuple[OfficialSchemas, list[tuple[dict[str, Any], str, str]]]:
    root = conformance_dir / "dsp" / "2025-1"
    schemas = OfficialSchemas(root / "schemas")
    cases = []
    for example, path, error_type in OFFICIAL:
        message = json.loads((root / "examples" / example).read_text(encoding="utf-8"))
        if "callbackAddress" in message:
            message["callbackAddress"] = UNBOUND_CALLBACK  # never a reachable peer
        if path.endswith("/request") and "consumerPid" in message and "providerPid" not in message:
            message["consumerPid"] = "urn:uuid:strict-property"
        cases.append((message, path, error_type))
    return schemas, cases


@pytest.fixture(scope="module")
def official(conformance_dir: Path) -> tuple[OfficialSchemas, list[tuple[dict[str, Any], str, str]]]:
    return _load_official(conformance_dir)


def test_mutated_official_messages_are_answered_by_the_schemas_rule(
    connectors: ConnectorWorld, official: tuple[OfficialSchemas, list[tuple[dict[str, Any], str, str]]]
) -> None:
    schemas, cases = official

    @settings(
        max_examples=HYPOTHESIS_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        example, path, error_type = data.draw(st.sampled_from(cases), label="official example")
        message = data.draw(_mutations(example), label="mutated message")
        before = connectors.snapshot()
        reply = _post(connectors, path, _encode(message))
        assert reply.status < 500, reply.describe()
        invalid = schemas.errors(message) if isinstance(message.get("@type"), str) else ["@type"]
        if reply.status >= 400:
            _assert_dsp_error(reply, error_type, {reply.status}, f"{path} {message!r:.200}")
        if invalid:
            assert reply.status in {400, 404, 413}, (
                f"{path} accepted a message the official schemas refuse ({invalid[:2]}): {reply.describe()}"
            )
        if reply.status >= 400:
            assert connectors.snapshot() == before

    check()


# ---- the other JSON APIs share the same reading ------------------------------------------------

MANAGEMENT_BODIES: dict[str, tuple[str, bytes, str]] = {
    "surrogate deep in a policy": (
        "/policies",
        b'{"id": "strict-1", "policy": {"@context": "http://www.w3.org/ns/odrl.jsonld", "uid": "urn:p:s1",'
        b' "@type": "Set", "permission": [{"action": "use", "title": "x\\ud800"}]}}',
        "/policy/permission/0/title",
    ),
    "surrogate in a dataset description": (
        "/assets",
        b'{"id": "strict-2", "title": "t", "data": {"kind": "parquet", "path": "x.parquet"},'
        b' "dataset": {"title": "\\udfff"}}',
        "/dataset/title",
    ),
    "a key twice": (
        "/assets",
        b'{"id": "strict-3", "id": "strict-4", "title": "t",'
        b' "data": {"kind": "parquet", "path": "x.parquet"}}',
        "id",
    ),
}


@pytest.mark.parametrize("name", sorted(MANAGEMENT_BODIES))
def test_management_json_is_read_as_strictly_as_dsp(connectors: ConnectorWorld, name: str) -> None:
    path, body, field = MANAGEMENT_BODIES[name]
    api = connectors.clients["provider"]
    before = connectors.snapshot()
    response = api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["field"] for error in response.json()["errors"]] == [field]
    assert connectors.snapshot() == before


# ---- on both databases: the text PostgreSQL cannot store never reaches it -------------------


@pytest.fixture(params=["sqlite", "postgres"])
def strict_pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """A provider and a consumer on the parametrized database (the consumer only for its DID)."""
    import os

    from tests.connector.conftest import _fresh_postgres_database
    from tests.connector.dsp_world import make_authority, running_party

    drops = []

    def storage(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name / 'connector.db'}"
        url, drop = _fresh_postgres_database(os.environ["SLUIS_TEST_POSTGRES_URL"])
        drops.append(drop)
        return url

    if request.param == "postgres" and not os.environ.get("SLUIS_TEST_POSTGRES_URL"):
        pytest.skip("no PostgreSQL: run the suite with ./dev test, which starts one")
    authority = make_authority()
    try:
        with (
            running_party(tmp_path, "provider", authority, storage("provider")) as provider,
            running_party(tmp_path, "consumer", authority, storage("consumer")) as consumer,
        ):
            yield provider, consumer
    finally:
        for drop in drops:
            drop()


@pytest.mark.parametrize("text", ["urn:uuid:a\\u0000b", "urn:uuid:\\ud800"])
def test_a_request_holding_unstorable_text_is_refused_before_any_state(
    strict_pair: tuple[Any, Any], text: str
) -> None:
    from connector.identity import KeyPair, issue_token

    provider, consumer = strict_pair
    credential = json.loads((consumer.root / "credentials" / "membership.json").read_text())
    token = issue_token(
        KeyPair.load(consumer.root / "participant-key.pem"), consumer.did, provider.did, [credential]
    )
    message = dsp.contract_request_message(
        "__PID__",
        {"@id": "urn:sluis:offer:s", "@type": "Offer", "permission": [{"action": "use"}], "target": "x"},
        callback_address=consumer.dsp,  # bound to the consumer: only the text stands in the way
    )
    body = json.dumps(message).replace('"__PID__"', f'"{text}"').encode()
    response = http().post(
        f"{provider.dsp}/negotiations/request",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid-unicode"
    with provider.management() as api:
        assert api.get("/negotiations").json() == []
