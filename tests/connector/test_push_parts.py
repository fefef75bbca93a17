"""The parts of a push delivery on their own: the sealed credential opens only for its transfer
and key, a PUT stops mid-body when told (the receiver gets no complete body), and a spooled
delivery read again must be the same bytes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from connector.addresses import AddressPolicy
from connector.control.push import PushDestination
from connector.control.push_secrets import CredentialSealer, SealError
from connector.control.push_send import SEND_CHUNK_BYTES, PushStopped, put_file
from connector.control.push_spool import PushSpool, SpoolMismatch, SpoolTooLarge
from connector.identity import KeyPair
from connector.store import Store
from sluis.servers import serve_in_thread


def test_a_sealed_credential_opens_only_for_its_transfer_and_key() -> None:
    key = KeyPair.generate()
    sealer = CredentialSealer(key)
    kept = PushDestination("https://bucket.example/x", "s3cret", "Bearer").sealed(sealer, "urn:uuid:t-1")
    assert "s3cret" not in str(kept)
    assert PushDestination.opened(kept, CredentialSealer(key), "urn:uuid:t-1").authorization == "s3cret"
    with pytest.raises(SealError, match="another transfer"):
        PushDestination.opened(kept, sealer, "urn:uuid:t-2")
    with pytest.raises(SealError, match="no longer has"):
        PushDestination.opened(kept, CredentialSealer(KeyPair.generate()), "urn:uuid:t-1")
    envelope = dict(kept["authorization_sealed"])
    tail = "BBBB" if envelope["sealed"].endswith("AAAA") else "AAAA"
    envelope["sealed"] = envelope["sealed"][:-4] + tail  # one altered byte or more
    with pytest.raises(SealError):
        sealer.open(envelope, "push-destination-authorization:urn:uuid:t-1")
    for junk in (None, "text", {"v": 2}, {"v": 1, "kid": kept["authorization_sealed"]["kid"], "nonce": "!"}):
        with pytest.raises(SealError):
            sealer.open(junk, "push-destination-authorization:urn:uuid:t-1")
    erased = PushDestination.erased(kept)
    assert "authorization_sealed" not in erased
    assert erased["endpoint"] == "https://bucket.example/x"


class Sink:
    """A destination that records how much of each body arrived, and whether it arrived whole."""

    def __init__(self) -> None:
        self.bodies: list[tuple[int, bool]] = []
        self.done = threading.Event()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.put("/bucket/x")
        async def put(request: Request) -> JSONResponse:
            size, whole = 0, False
            try:
                async for chunk in request.stream():
                    size += len(chunk)
                whole = True
            except Exception:  # the client went away mid-body
                whole = False
            finally:
                self.bodies.append((size, whole))
                self.done.set()
            return JSONResponse({}, status_code=201)

        return app


def test_a_push_told_to_stop_drops_the_connection_mid_body(tmp_path: Path) -> None:
    data = tmp_path / "spooled"
    data.write_bytes(b"x" * (3 * SEND_CHUNK_BYTES))
    sink = Sink()
    asked = 0

    def stop_after_first_chunk() -> str | None:
        nonlocal asked
        asked += 1
        return "the agreement was terminated" if asked > 1 else None

    policy = AddressPolicy(allow_loopback=True)
    headers = {"Content-Length": str(3 * SEND_CHUNK_BYTES), "Content-Type": "application/octet-stream"}
    with serve_in_thread(sink.app()) as url:
        checked = policy.check_url(f"{url}/bucket/x")
        with pytest.raises(PushStopped, match="terminated") as stopped:
            put_file(checked, policy, headers, data, stop_after_first_chunk, lease_lost="lease lost")
        assert sink.done.wait(30)
    assert not stopped.value.lease_lost
    [(size, whole)] = sink.bodies
    assert not whole
    assert size < 3 * SEND_CHUNK_BYTES


@pytest.fixture
def spool(tmp_path: Path, storage_urls: Callable[[str], str]) -> Iterator[PushSpool]:
    url = storage_urls("spool")
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    store = Store(url)
    store.migrate()
    yield PushSpool(tmp_path / "spool-files", store)
    store.close()


def test_a_delivery_read_again_must_be_the_same_bytes(spool: PushSpool, tmp_path: Path) -> None:
    first = spool.write(7, "urn:uuid:t", "application/vnd.apache.arrow.stream", [b"granted ", b"bytes"])
    assert spool.local(7) == first
    assert first.path.stat().st_mode & 0o777 == 0o600  # granted data: readable by this process alone
    spool.path(7).unlink()  # another replica's disk: read again
    assert spool.local(7) is None
    again = PushSpool(spool.root, spool.store).write(7, "urn:uuid:t", first.media_type, [b"granted bytes"])
    assert again.sha256 == first.sha256
    with pytest.raises(SpoolMismatch):
        spool.write(7, "urn:uuid:t", first.media_type, [b"changed bytes"])
    assert not spool.path(7).exists()  # other bytes are never left to be sent
    spool.path(7).write_bytes(b"granted bytez")  # a damaged file is not sent either
    assert PushSpool(spool.root, spool.store).local(7) is None
    spool.forget(7)
    assert spool.recorded(7) is None


def test_a_push_larger_than_the_limit_stops_spooling_and_ends_its_read(spool: PushSpool) -> None:
    ended = []

    def read() -> Iterator[bytes]:
        try:
            while True:
                yield b"x" * 64
        finally:
            ended.append(True)  # the data plane's read: slot freed, audit entry written

    small = PushSpool(spool.root, spool.store, max_bytes=1000)
    with pytest.raises(SpoolTooLarge, match="pull"):
        small.write(9, "urn:uuid:t", "application/vnd.apache.arrow.stream", read())
    assert ended == [True]
    assert list(spool.root.iterdir()) == []
    assert spool.recorded(9) is None


def test_a_push_read_again_under_its_key_is_counted_once_even_at_the_limit(spool: PushSpool) -> None:
    from connector.dataplane.store import DataPlaneStore

    plane = DataPlaneStore(spool.store.db)
    assert plane.reserve_read("agreement-1", 1, "push:7") == 1
    assert plane.reserve_read("agreement-1", 1, "push:7") == 1  # the same delivery read again
    assert plane.keyed_read("push:7") == 1
    assert plane.reads("agreement-1") == 1
    assert plane.reserve_read("agreement-1", 1, "push:8") is None  # another delivery: over the limit
    assert plane.keyed_read("push:8") is None  # and nothing kept of it
    assert plane.reserve_read("agreement-1", 1) is None


def test_the_sweep_removes_ended_deliveries_and_stale_halves_but_not_a_replicas_live_write(
    spool: PushSpool,
) -> None:
    import os
    import time

    ended = spool.write(11, "urn:uuid:t", "application/vnd.apache.arrow.stream", [b"bytes"])
    live = spool.root / "12.0a1b.part"
    live.write_bytes(b"being written")
    stale = spool.root / "13.0c2d.part"
    stale.write_bytes(b"left by a killed process")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    assert spool.sweep() == 2  # no outbox item 11 is pending: its delivery ended
    assert not ended.path.exists()
    assert spool.recorded(11) is None
    assert live.exists()
    assert not stale.exists()
