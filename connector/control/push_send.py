"""One ``PUT`` of a spooled push to its destination, to the address the policy checked.

The destination's host name was resolved and every address checked by the address policy just
before this call (:meth:`connector.addresses.AddressPolicy.check_url`). The connection goes to
those checked addresses, not to whatever the name resolves to a moment later (DNS rebinding:
resolve once, connect to what was checked); the socket's peer is checked once more. TLS still
names and verifies the host (SNI and certificate for the name, not the address). No redirect is
followed: a 3xx is the destination's refusal, so a redirect cannot lead the data elsewhere.

The body is sent in chunks from the file, so memory stays bounded; between chunks the caller's
``stop`` is asked (the outbox lease was lost, the transfer was suspended or its agreement
revoked) and the connection is dropped mid-body, which a receiver must treat as no delivery.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from connector.addresses import AddressPolicy, Destination, checked_peer

#: How long one attempt may wait for the destination (connect, then each read or write).
PUSH_TIMEOUT_SECONDS = 60.0
#: Bytes of a destination's answer read at most (only its status is used).
MAX_ANSWER_BYTES = 64 * 1024
#: Bytes sent per write (and between two ``stop`` checks).
SEND_CHUNK_BYTES = 1024 * 1024


class PushStopped(Exception):
    """The sender was told to stop mid-body; the message says why."""

    def __init__(self, reason: str, lease_lost: bool) -> None:
        super().__init__(reason)
        self.lease_lost = lease_lost


def pinned_connection(checked: Destination, policy: AddressPolicy) -> Callable[..., socket.socket]:
    """``create_connection`` for ``http.client`` that connects to ``checked.addresses`` in turn
    (ignoring the host name it is given) and checks the connected peer against ``policy``."""

    def create_connection(
        address: tuple[str, int], timeout: float | None = None, source_address: tuple[str, int] | None = None
    ) -> socket.socket:
        error: OSError | None = None
        for ip in checked.addresses:
            try:
                sock = socket.create_connection((ip, checked.port), timeout, source_address)
            except OSError as failed:
                error = failed
                continue
            return checked_peer(sock, policy, checked.host)
        raise error or OSError(f"{checked.host} has no address to connect to")

    return create_connection


def put_file(
    checked: Destination,
    policy: AddressPolicy,
    headers: dict[str, str],
    path: Path,
    stop: Callable[[], str | None],
    lease_lost: str = "",
) -> int:
    """``PUT`` the file at ``path`` to ``checked.url``; the answer's status. Raises
    :class:`PushStopped` when ``stop`` names a reason mid-body (``lease_lost`` is the reason
    that means the outbox lease was lost), ``PeerRefused`` when the
    connection reached a refused address, ``OSError``/``HTTPException`` when it failed."""
    parts = urlsplit(checked.url)
    factory = http.client.HTTPSConnection if checked.scheme == "https" else http.client.HTTPConnection
    connection = factory(checked.host, checked.port, timeout=PUSH_TIMEOUT_SECONDS)
    connection._create_connection = pinned_connection(checked, policy)  # type: ignore[attr-defined]
    try:
        connection.putrequest("PUT", parts.path or "/", skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        with path.open("rb") as body:
            while chunk := body.read(SEND_CHUNK_BYTES):
                reason = stop()
                if reason is not None:
                    raise PushStopped(reason, reason == lease_lost)
                connection.send(chunk)
        response = connection.getresponse()
        response.read(MAX_ANSWER_BYTES)  # the answer is not used; bounded
        return int(response.status)
    finally:
        connection.close()
