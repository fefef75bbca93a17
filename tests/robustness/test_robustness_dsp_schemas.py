"""DSP messages mutated member by member from the connector's own message schemas
(``vocab.dsp.MESSAGE_SCHEMAS``): each required member left out or given the wrong JSON type,
then members filled by hypothesis (fixed seed, bounded examples). Every refusal is a DSP error
message naming the member; none is a 500; no process changes.

Process endpoints get an unknown process id: the message is checked before the process is
looked up, and a wrongly accepted message cannot end the live negotiation the other tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.hostile import Rejection, Reply, assert_rejected, http
from tests.robustness.known_bugs import case
from tests.robustness.targets import UNKNOWN_ID
from tests.robustness.worlds import ConnectorWorld
from vocab import dsp

HYPOTHESIS_EXAMPLES = 8
OTHER_PID = "urn:uuid:00000000-0000-4000-8000-00000000beef"
OFFER = {"@id": "urn:sluis:offer:robustness", "@type": "Offer", "permission": [{"action": "use"}]}
CALLBACK = "http://127.0.0.1:9/dsp"

# Each message type the connector accepts: the endpoint it goes to and a well-formed instance.
MESSAGES: dict[str, tuple[str, dict[str, Any]]] = {
    "CatalogRequestMessage": ("/catalog/request", dsp.catalog_request_message()),
    "ContractRequestMessage": (
        "/negotiations/request",
        dsp.contract_request_message(OTHER_PID, OFFER, callback_address=CALLBACK),
    ),
    "ContractNegotiationEventMessage": (
        f"/negotiations/{UNKNOWN_ID}/events",
        dsp.negotiation_event_message(UNKNOWN_ID, OTHER_PID, "ACCEPTED"),
    ),
    "ContractNegotiationTerminationMessage": (
        f"/negotiations/{UNKNOWN_ID}/termination",
        dsp.negotiation_termination_message(UNKNOWN_ID, OTHER_PID),
    ),
    "TransferRequestMessage": (
        "/transfers/request",
        dsp.transfer_request_message(OTHER_PID, UNKNOWN_ID, "HttpData-PULL", CALLBACK),
    ),
    "TransferStartMessage": (
        f"/transfers/{UNKNOWN_ID}/start",
        dsp.transfer_start_message(UNKNOWN_ID, OTHER_PID),
    ),
    "TransferSuspensionMessage": (
        f"/transfers/{UNKNOWN_ID}/suspension",
        dsp.transfer_suspension_message(UNKNOWN_ID, OTHER_PID),
    ),
    "TransferCompletionMessage": (
        f"/transfers/{UNKNOWN_ID}/completion",
        dsp.transfer_completion_message(UNKNOWN_ID, OTHER_PID),
    ),
    "TransferTerminationMessage": (
        f"/transfers/{UNKNOWN_ID}/termination",
        dsp.transfer_termination_message(UNKNOWN_ID, OTHER_PID),
    ),
}
WRONG_BY_TYPE: dict[str, list[Any]] = {
    "string": [42, {"@id": "x"}, ["x"]],
    "array": ["x", {"a": 1}],
    "object": ["x", [1]],
}


def _schema(message_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = dsp.MESSAGE_SCHEMAS[message_type]
    return schema


def _kind(member: dict[str, Any]) -> str:
    if "const" in member:
        return "string"
    if "$ref" in member:
        return "object"
    kind = member.get("type", "object")
    return kind if isinstance(kind, str) else "object"


def _post(world: ConnectorWorld, path: str, body: Any) -> Reply:
    return Reply.of(http().post(f"{world.provider.dsp}{path}", json=body, headers=world.dsp_auth()))


_TEST = "test_a_message_missing_or_mistyping_a_member_is_a_dsp_error_naming_it"


def _cases() -> Iterator[object]:
    for message_type, (path, message) in MESSAGES.items():
        schema = _schema(message_type)
        for member in schema.get("required", []):
            if member == "@context":
                continue
            dropped = {key: value for key, value in message.items() if key != member}
            yield case(_TEST, path, dropped, member, id=f"{message_type}-without-{member}")
            member_schema = schema.get("properties", {}).get(member, {})
            for index, wrong in enumerate(WRONG_BY_TYPE.get(_kind(member_schema), [])):
                yield case(
                    _TEST,
                    path,
                    {**message, member: wrong},
                    member,
                    id=f"{message_type}-{member}-wrong-{index}",
                )


def test_every_incoming_message_type_has_a_case() -> None:
    """A message type the connector starts accepting is mutated here too (or this fails)."""
    incoming = {name for name in dsp.MESSAGE_SCHEMAS if name.endswith("Message")}
    consumer_side = {
        "ContractOfferMessage",
        "ContractAgreementMessage",
        "ContractAgreementVerificationMessage",
        "DatasetRequestMessage",
    }
    assert incoming - consumer_side <= set(MESSAGES), sorted(incoming - consumer_side - set(MESSAGES))


@pytest.mark.parametrize(("path", "message", "member"), list(_cases()))
def test_a_message_missing_or_mistyping_a_member_is_a_dsp_error_naming_it(
    connectors: ConnectorWorld, path: str, message: dict[str, Any], member: str
) -> None:
    before = connectors.snapshot()
    reply = _post(connectors, path, message)
    names = {member, member.lstrip("@")}
    assert_rejected(reply, Rejection(dsp=True, statuses={400}, fields=names), f"POST /dsp{path} bad {member}")
    assert connectors.snapshot() == before


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@pytest.mark.parametrize("message_type", list(MESSAGES))
def test_drawn_members_never_break_a_dsp_endpoint(connectors: ConnectorWorld, message_type: str) -> None:
    path, message = MESSAGES[message_type]
    members = {key: JSON_VALUES for key in message if key not in ("@context", "@type")}

    @settings(
        max_examples=HYPOTHESIS_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=st.fixed_dictionaries(members))
    def attempt(drawn: dict[str, Any]) -> None:
        body = {**message, **drawn}
        if "callbackAddress" in body:
            body["callbackAddress"] = (
                CALLBACK if isinstance(body["callbackAddress"], str) else body["callbackAddress"]
            )
        before = connectors.snapshot()
        reply = _post(connectors, path, body)
        assert reply.status < 500, f"POST /dsp{path} with {body!r}: {reply.describe()}"
        if reply.status >= 400:
            assert_rejected(reply, Rejection(dsp=True), f"POST /dsp{path} with {str(body)[:200]}")
            assert connectors.snapshot() == before

    attempt()
