"""A DID host that answers one byte at a time cannot hold a resolution past its deadline.

httpx's timeouts are per read: a host that sends its status line and headers a byte at a time,
each byte within the read timeout, would otherwise keep a fetch (a worker thread and one of the
resolver's few slots) for as long as it likes. The trickling host below would take far longer
than the resolver's budget to finish its headers; what is asserted is that the resolver hung up
before the host got to the end, and said why.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from connector.addresses import AddressPolicy
from connector.identity import DidResolver, IdentityError, did_web_for

PADDING_BYTES = 200
SECONDS_PER_BYTE = 0.05
RESOLVER_SECONDS = 0.5  # a tenth of what the host needs for its headers


class TricklingHost:
    """Answers every connection with a valid response whose headers arrive a byte at a time."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port: int = self.sock.getsockname()[1]
        self.finished = 0
        self.cut_off = 0
        self.done = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * PADDING_BYTES
        try:
            conn.recv(4096)
            for index in range(len(head)):
                conn.sendall(head[index:index + 1])
                time.sleep(SECONDS_PER_BYTE)
            conn.sendall(b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            self.finished += 1
        except OSError:
            self.cut_off += 1
        finally:
            conn.close()
            self.done.set()

    def close(self) -> None:
        self.sock.close()


@contextmanager
def trickling_host() -> Iterator[TricklingHost]:
    host = TricklingHost()
    try:
        yield host
    finally:
        host.close()


def test_a_did_host_trickling_its_headers_is_cut_off_at_the_deadline() -> None:
    with trickling_host() as host, DidResolver(
        allowed_hosts=["127.0.0.1"],
        address_policy=AddressPolicy(allow_loopback=True),
        timeout_seconds=RESOLVER_SECONDS,
    ) as resolver:
        with pytest.raises(IdentityError) as refused:
            resolver.resolve(did_web_for("127.0.0.1", host.port))
        assert refused.value.code == "did_unreachable"
        assert "took longer" in refused.value.message
        # the host notices the hang-up at its next byte
        assert host.done.wait(PADDING_BYTES * SECONDS_PER_BYTE * 4)
        assert host.cut_off == 1
        assert host.finished == 0
