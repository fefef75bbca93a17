"""Bodies derived from the management API's own OpenAPI schemas: each required field left out,
each field given the wrong type or an endless string, extra fields added; then bodies drawn by
hypothesis (fixed seed, bounded examples). A refusal names the field; an acceptance must be a
body the published schema allows; nothing is ever a 500 or a half-write."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.hostile import LONG_STRING_CHARS, Rejection, Reply, assert_rejected
from tests.robustness.known_bugs import known
from tests.robustness.routes import Operation, operations
from tests.robustness.targets import Targets
from tests.robustness.worlds import CatalogueWorld, ConnectorWorld

# Examples per operation: enough to reach odd shapes, few enough for the suite's time budget.
HYPOTHESIS_EXAMPLES = 12
CLOSED_PORT_URL = "http://127.0.0.1:9/dsp"
WRONG_VALUES: dict[str, list[Any]] = {
    "string": [12345, ["x"], {"a": 1}, True],
    "array": ["x", {"a": 1}, 7],
    "object": ["x", [1, 2], 7],
    "integer": ["x", [1], 1.5],
    "boolean": ["maybe", [True], {"b": 1}],
}


@pytest.fixture(scope="module")
def targets(catalogue: CatalogueWorld, connectors: ConnectorWorld) -> Targets:
    return Targets(catalogue, connectors)


def _type(schema: dict[str, Any]) -> str:
    if "type" in schema:
        return str(schema["type"])
    for option in schema.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def _option(schema: dict[str, Any]) -> dict[str, Any]:
    for option in schema.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return dict(option)
    return schema


def minimal(schema: dict[str, Any], name: str = "") -> Any:
    """The smallest body the schema allows (addresses point at a closed loopback port)."""
    schema = _option(schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = _type(schema)
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: minimal(properties[key], key) for key in schema.get("required", []) if key in properties}
    if kind == "array":
        return [minimal(schema.get("items", {}), name)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "boolean":
        return False
    return CLOSED_PORT_URL if "address" in name else f"robustness-{name or 'value'}"


def _schema_ops() -> list[Operation]:
    """Management operations (DSP message bodies are attacked in test_robustness_dsp_schemas)."""
    return [
        op
        for op in operations(body=True)
        if op.body_schema and op.body_schema.get("properties") and op.path.startswith("/management/")
    ]


def _outbound(op: Operation) -> bool:
    """Accepting such a body would make the connector call out: never let one be valid."""
    return "counterparty_address" in (op.body_schema or {}).get("properties", {})


def _post(targets: Targets, op: Operation, body: Any) -> Reply:
    before = targets.snapshot(op)
    reply = targets.send(
        op, ids=targets.unknown_ids(op), content=json.dumps(body).encode(), content_type="application/json"
    )
    if 400 <= reply.status < 500:
        assert targets.snapshot(op) == before, f"{op.id}: a refused body changed state"
    return reply


def _mutation_cases() -> Iterator[object]:
    for op in _schema_ops():
        schema = op.body_schema or {}
        properties = schema["properties"]
        for field_name in schema.get("required", []):
            yield pytest.param(op, "drop", field_name, None, id=f"{op.id}-without-{field_name}")
        for field_name, prop in properties.items():
            for index, wrong in enumerate(WRONG_VALUES.get(_type(prop), [])):
                yield pytest.param(
                    op, "set", field_name, wrong, id=f"{op.id}-{field_name}-wrong-type-{index}"
                )
            if _type(prop) == "string" and "enum" not in _option(prop):
                yield pytest.param(
                    op, "set", field_name, "x" * LONG_STRING_CHARS, id=f"{op.id}-{field_name}-1M-chars"
                )


@pytest.mark.parametrize(("op", "change", "field_name", "value"), list(_mutation_cases()))
def test_schema_violations_are_refused_naming_the_field(
    targets: Targets, op: Operation, change: str, field_name: str, value: Any
) -> None:
    body = minimal(op.body_schema or {})
    if change == "drop":
        body.pop(field_name, None)
    else:
        body[field_name] = value
    reply = _post(targets, op, body)
    assert_rejected(
        reply, Rejection(fields={field_name}), f"{op.id} with {field_name} {change} {str(value)[:30]}"
    )


@pytest.mark.parametrize("op", [op for op in _schema_ops() if not _outbound(op)], ids=lambda op: op.id)
def test_extra_fields_are_ignored_or_refused_never_a_server_error(targets: Targets, op: Operation) -> None:
    body = {**minimal(op.body_schema or {}), "unexpected": {"nested": [1, 2, 3]}, "__class__": "x"}
    reply = _post(targets, op, body)
    assert reply.status < 500, reply.describe()
    if reply.status >= 400:
        assert_rejected(reply, Rejection(), f"{op.id} with extra fields")


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
NOT_A_STRING = st.none() | st.booleans() | st.integers() | st.lists(st.text(max_size=5), max_size=2)


@pytest.mark.parametrize("op", _schema_ops(), ids=lambda op: op.id)
def test_drawn_bodies_are_refused_cleanly_or_match_the_schema(targets: Targets, op: Operation) -> None:
    schema = op.body_schema or {}
    fields = {
        name: (NOT_A_STRING if name == "counterparty_address" else JSON_VALUES | st.just(minimal(prop, name)))
        for name, prop in schema["properties"].items()
    }

    @settings(
        max_examples=HYPOTHESIS_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=st.fixed_dictionaries(fields))
    def attempt(body: dict[str, Any]) -> None:
        reply = _post(targets, op, body)
        assert reply.status < 500, f"{op.id} with {body!r}: {reply.describe()}"
        if reply.status >= 400:
            assert_rejected(reply, Rejection(), f"{op.id} with {str(body)[:200]}")
        else:
            jsonschema.validate(body, schema)

    attempt()


@known("test_an_asset_description_nested_past_the_dsp_depth_limit_is_refused")
def test_an_asset_description_nested_past_the_dsp_depth_limit_is_refused(targets: Targets) -> None:
    """The description is served in DSP catalogs, whose peers refuse messages nested this deep."""
    from vocab.dsp import MAX_MESSAGE_DEPTH

    op = next(op for op in _schema_ops() if op.path == "/management/assets")
    nested: dict[str, Any] = {"http://purl.org/dc/terms/title": "leaf"}
    for _ in range(MAX_MESSAGE_DEPTH + 10):
        nested = {"http://purl.org/dc/terms/relation": nested}
    body = {**minimal(op.body_schema or {}), "id": "urn:sluis:robustness:deep-description", "dataset": nested}
    reply = _post(targets, op, body)
    assert_rejected(reply, Rejection(fields={"dataset"}), "an asset whose dataset nests past the DSP limit")
