"""DSP endpoints under wrong-typed, incomplete, oversized and replayed messages.

Every refusal is a DSP error message (``ContractNegotiationError`` …) with the status the
protocol wants, never a 500; a callback address that is not the counter-party's registered
endpoint is refused without the connector ever contacting it; no refusal changes a process.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connector.identity import KeyPair, issue_token
from tests.robustness.hostile import Rejection, Reply, assert_rejected, http
from tests.robustness.worlds import ASSET_ID, ConnectorWorld
from vocab import dsp

OFFER = {
    "@id": "urn:sluis:offer:robustness",
    "@type": "Offer",
    "permission": [{"action": "use"}],
    "target": ASSET_ID,
}


def _post(
    world: ConnectorWorld,
    path: str,
    body: Any,
    *,
    to: str = "provider",
    headers: dict[str, str] | None = None,
) -> Reply:
    party = world.party(to)
    sent = {**world.dsp_auth(to), **(headers or {})}
    return Reply.of(http().post(f"{party.dsp}{path}", json=body, headers=sent))


def _without(message: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key != name}


def _request() -> dict[str, Any]:
    return dsp.contract_request_message(
        "urn:uuid:robustness-consumer", OFFER, callback_address="http://127.0.0.1:1/dsp"
    )


def _mutations() -> Iterator[object]:
    base = _request()
    yield pytest.param(_without(base, "consumerPid"), {"consumerPid"}, id="missing-consumerPid")
    yield pytest.param(_without(base, "offer"), {"offer"}, id="missing-offer")
    yield pytest.param(_without(base, "@type"), {"@type", "type"}, id="missing-type")
    yield pytest.param({**base, "consumerPid": 42}, {"consumerPid"}, id="consumerPid-number")
    yield pytest.param({**base, "consumerPid": {"@id": "x"}}, {"consumerPid"}, id="consumerPid-object")
    yield pytest.param({**base, "offer": "an offer"}, {"offer"}, id="offer-string")
    yield pytest.param({**base, "offer": [OFFER, OFFER]}, {"offer"}, id="offer-array")
    yield pytest.param(
        {**base, "@type": "ContractAgreementMessage"}, {"type", "contractrequest"}, id="wrong-type"
    )
    yield pytest.param({**base, "@type": 7}, {"type"}, id="type-number")
    yield pytest.param(
        {**base, "@context": ["https://evil.example/context.jsonld"]}, {"context"}, id="remote-context"
    )
    yield pytest.param({**base, "@context": ["file:///etc/passwd"]}, {"context"}, id="file-context")
    yield pytest.param(
        {**base, "callbackAddress": ["http://127.0.0.1:1/dsp"]}, {"callbackAddress"}, id="callback-array"
    )
    yield pytest.param(
        {**base, "consumerPid": "x" * 100_000}, {"consumerPid", "body", "large"}, id="pid-100k-chars"
    )


@pytest.mark.parametrize(("message", "fields"), list(_mutations()))
def test_malformed_contract_requests_are_dsp_errors_naming_the_member(
    connectors: ConnectorWorld, message: dict[str, Any], fields: set[str]
) -> None:
    before = connectors.snapshot()
    reply = _post(connectors, "/negotiations/request", message)
    assert_rejected(reply, Rejection(dsp=True, fields=fields), f"ContractRequestMessage {sorted(fields)}")
    assert connectors.snapshot() == before


@pytest.mark.parametrize(
    ("path", "build"),
    [
        (
            "/negotiations/{pid}/termination",
            lambda w: {
                **dsp.negotiation_termination_message(w.provider_negotiation_pid, "urn:uuid:other"),
                "consumerPid": ["not", "a", "pid"],
            },
        ),
        (
            "/negotiations/{pid}/events",
            lambda w: {
                **dsp.negotiation_event_message(
                    w.provider_negotiation_pid, w.consumer_negotiation_pid, "ACCEPTED"
                ),
                "eventType": {"evil": True},
            },
        ),
        (
            "/negotiations/{pid}/agreement/verification",
            lambda w: _without(
                dsp.negotiation_event_message(
                    w.provider_negotiation_pid, w.consumer_negotiation_pid, "ACCEPTED"
                ),
                "@type",
            ),
        ),
        (
            "/transfers/{pid}/suspension",
            lambda w: {
                **dsp.transfer_suspension_message(w.provider_transfer_id, w.consumer_transfer_id),
                "reason": "x" * 10,
            },
        ),
        (
            "/transfers/{pid}/completion",
            lambda w: {
                **dsp.transfer_completion_message(w.provider_transfer_id, w.consumer_transfer_id),
                "providerPid": None,
            },
        ),
    ],
    ids=[
        "termination-pid-array",
        "event-type-object",
        "verification-without-type",
        "suspension-reason-string",
        "completion-null-pid",
    ],
)
def test_wrong_typed_process_messages_leave_the_live_process_alone(
    connectors: ConnectorWorld, path: str, build: Callable[[ConnectorWorld], dict[str, Any]]
) -> None:
    pid = (
        connectors.provider_negotiation_pid
        if path.startswith("/negotiations")
        else connectors.provider_transfer_id
    )
    before = connectors.snapshot()
    reply = _post(connectors, path.replace("{pid}", pid), build(connectors))
    assert_rejected(reply, Rejection(dsp=True), f"{path} with a wrong-typed message")
    assert connectors.snapshot() == before


def test_consumer_side_endpoints_refuse_hostile_messages_from_the_provider(
    connectors: ConnectorWorld,
) -> None:
    before = connectors.snapshot()
    pid = connectors.consumer_negotiation_pid
    for suffix, body in (
        ("/agreement", {"@type": "ContractAgreementMessage", "agreement": "not an agreement"}),
        ("/offers", [1, 2, 3]),
        ("/events", {"@type": "ContractNegotiationEventMessage", "eventType": 12}),
        ("/termination", {"@type": "ContractNegotiationTerminationMessage", "consumerPid": {}}),
    ):
        reply = _post(connectors, f"/negotiations/{pid}{suffix}", body, to="consumer")
        assert_rejected(reply, Rejection(dsp=True), f"consumer /negotiations/{{pid}}{suffix}")
    transfer = connectors.consumer_transfer_id
    reply = _post(
        connectors,
        f"/transfers/{transfer}/start",
        {"@type": "TransferStartMessage", "dataAddress": "http://127.0.0.1:1/steal"},
        to="consumer",
    )
    assert_rejected(reply, Rejection(dsp=True), "consumer /transfers/{pid}/start with a string data address")
    assert connectors.snapshot() == before


class _Listener:
    """A loopback socket that records whether anything connected to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_callback_to_an_unregistered_address_is_refused_and_never_contacted(
    connectors: ConnectorWorld,
) -> None:
    listener = _Listener()
    try:
        before = connectors.snapshot()
        message = dsp.contract_request_message(
            "urn:uuid:robustness-callback",
            {**OFFER, "@id": "urn:sluis:offer:8:readings:" + ASSET_ID},
            callback_address=f"http://127.0.0.1:{listener.port}/dsp",
        )
        reply = _post(connectors, "/negotiations/request", message)
        assert_rejected(
            reply,
            Rejection(dsp=True, statuses={400, 403}, fields={"callback"}),
            "a callbackAddress that is not the consumer's",
        )
        time.sleep(0.5)  # give a wrongly started outbox delivery the chance to show itself
        assert listener.connections == 0, "the connector contacted an unregistered callback address"
        assert connectors.snapshot() == before
    finally:
        listener.close()


def test_a_replayed_token_is_refused(connectors: ConnectorWorld) -> None:
    token = connectors.dsp_token()
    body = dsp.catalog_request_message()
    with httpx.Client(timeout=60) as client:
        url = f"{connectors.provider.dsp}/catalog/request"
        first = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert first.status_code == 200, first.text
        again = Reply.of(client.post(url, json=body, headers={"Authorization": f"Bearer {token}"}))
    assert_rejected(again, Rejection(dsp=True, statuses={401}), "a replayed DSP token")


@pytest.mark.parametrize("case", ["other-audience", "expired", "stranger-key"])
def test_tokens_that_do_not_prove_the_caller_are_refused(connectors: ConnectorWorld, case: str) -> None:
    world = connectors
    if case == "other-audience":
        token = issue_token(
            world.consumer_key, world.consumer.did, world.consumer.did, world.consumer_credentials
        )
    elif case == "expired":
        token = issue_token(
            world.consumer_key,
            world.consumer.did,
            world.provider.did,
            world.consumer_credentials,
            ttl_seconds=60,
            now=datetime.now(UTC) - timedelta(hours=1),
        )
    else:
        token = issue_token(
            KeyPair.generate(), world.consumer.did, world.provider.did, world.consumer_credentials
        )
    with httpx.Client(timeout=60) as client:
        reply = Reply.of(
            client.post(
                f"{world.provider.dsp}/catalog/request",
                json=dsp.catalog_request_message(),
                headers={"Authorization": f"Bearer {token}"},
            )
        )
    assert_rejected(reply, Rejection(dsp=True, statuses={401}), f"a DSP token ({case})")


def test_a_message_just_over_the_dsp_size_limit_is_refused_with_413(connectors: ConnectorWorld) -> None:
    from connector.dsp_http import MAX_DSP_BODY_BYTES

    message = {**dsp.catalog_request_message(), "https://w3id.org/sluis/ns#pad": "p" * MAX_DSP_BODY_BYTES}
    reply = _post(connectors, "/catalog/request", message)
    assert_rejected(reply, Rejection(dsp=True, statuses={413}), "a catalog request over the DSP size limit")


def test_json_nested_past_the_depth_limit_is_refused(connectors: ConnectorWorld) -> None:
    from vocab.dsp import MAX_MESSAGE_DEPTH

    nested: Any = "leaf"
    for _ in range(MAX_MESSAGE_DEPTH + 5):
        nested = {"https://w3id.org/sluis/ns#n": nested}
    message = {**dsp.catalog_request_message(), "https://w3id.org/sluis/ns#deep": nested}
    reply = _post(connectors, "/catalog/request", message)
    assert_rejected(
        reply,
        Rejection(dsp=True, statuses={400}, fields={"deep", "nest", "depth"}),
        "a catalog request nested past the depth limit",
    )


def test_one_token_sent_many_times_at_once_is_accepted_once(connectors: ConnectorWorld) -> None:
    """The replay guard is atomic: racing copies of one token cannot all get in."""
    from concurrent.futures import ThreadPoolExecutor

    token = connectors.dsp_token()
    url = f"{connectors.provider.dsp}/catalog/request"
    body = dsp.catalog_request_message()

    def send(_: int) -> Reply:
        return Reply.of(http().post(url, json=body, headers={"Authorization": f"Bearer {token}"}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(send, range(8)))
    accepted = [reply for reply in replies if reply.status == 200]
    assert len(accepted) == 1, [reply.describe()[:120] for reply in replies]
    for reply in replies:
        if reply.status != 200:
            assert_rejected(reply, Rejection(dsp=True, statuses={401}), "a racing copy of a used token")


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.2:9/steal", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/x"]
)
def test_a_pull_request_naming_a_destination_is_refused_and_it_is_never_contacted(
    connectors: ConnectorWorld, endpoint: str
) -> None:
    # DSP 2025-1: dataAddress in a TransferRequestMessage is for push; a pull's address comes
    # from the provider. Accepting and ignoring it would let the consumer believe it was taken.
    listener = _Listener()
    try:
        before = connectors.snapshot()
        for destination in (endpoint, f"http://127.0.0.1:{listener.port}/steal"):
            message = dsp.transfer_request_message(
                "urn:uuid:robustness-pull-address", connectors.agreement_id, "HttpData-PULL",
                connectors.consumer.dsp, address=dsp.data_address(destination, {}),
            )
            reply = _post(connectors, "/transfers/request", message)
            expected = Rejection(dsp=True, statuses={400}, fields={"dataAddress"})
            body = assert_rejected(reply, expected, "a pull with a dataAddress")
            assert body["@type"] == "TransferError"
        assert listener.connections == 0, "the connector contacted a pull request's dataAddress"
        assert connectors.snapshot() == before
    finally:
        listener.close()
