"""Management requests whose addresses are not HTTP URLs: refused as bad input (400 naming
``counterparty_address``), never a 5xx, and never stored as a process that can only fail.

They go to a connector of their own: a wrongly accepted one would leave a negotiation retrying
in the background, which must not disturb the shared worlds' state checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.robustness.hostile import Rejection, Reply, assert_rejected, http
from tests.robustness.known_bugs import case
from tests.robustness.worlds import Participant, lone_connector

NOT_HTTP_URLS = {
    "file-url": "file:///etc/passwd",
    "no-scheme": "not a url",
    "scheme-only": "http://",
    "gopher": "gopher://127.0.0.1:70/x",
    "broken-ipv6": "http://[::1",
    "port-out-of-range": "http://127.0.0.1:99999/dsp",
}
OFFER = {"@id": "urn:sluis:offer:x", "@type": "Offer", "permission": [{"action": "use"}]}


@pytest.fixture(scope="module")
def lone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Participant]:
    with lone_connector(tmp_path_factory.mktemp("robust-lone")) as participant:
        yield participant


def _processes(party: Participant) -> list[object]:
    headers = {"Authorization": f"Bearer {party.token}"}
    listing: list[object] = []
    for kind in ("negotiations", "transfers"):
        response = http().get(f"{party.url}/management/{kind}", headers=headers)
        assert response.status_code == 200, response.text
        listing.extend(response.json())
    return listing


_TEST = "test_counterparty_addresses_that_are_not_http_urls_are_refused"


@pytest.mark.parametrize(
    ("path", "address"),
    [
        case(_TEST, path, address, id=f"{path}-{name}")
        for path in ("/catalog/request", "/negotiations")
        for name, address in NOT_HTTP_URLS.items()
    ],
)
def test_counterparty_addresses_that_are_not_http_urls_are_refused(
    lone: Participant, path: str, address: str
) -> None:
    body: dict[str, object] = {"counterparty_address": address}
    if path == "/negotiations":
        body.update({"counterparty_id": "did:web:127.0.0.1%3A9", "dataset_id": "urn:x", "offer": OFFER})
    before = _processes(lone)
    response = http().post(
        f"{lone.url}/management{path}", json=body, headers={"Authorization": f"Bearer {lone.token}"}
    )
    reply = Reply.of(response)
    assert_rejected(
        reply, Rejection(statuses={400}, fields={"counterparty_address"}), f"POST {path} to {address!r}"
    )
    assert _processes(lone) == before, f"POST {path} to {address!r} stored a process"
