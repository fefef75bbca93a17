"""The outbox under a slow or hostile peer: one peer cannot hold every sender, and a delivery
that outlives its lease is kept by the worker sending it (renewed), never sent twice by another
replica. Real HTTP servers on loopback, real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import connector.control.outbox as outbox_module
import connector.store.store as store_module
from connector.addresses import AddressPolicy
from connector.control.outbox import OUTBOX_SENDERS, OUTBOX_SENDERS_PER_PEER, Outbox
from connector.dsp_client import DspClient
from connector.identity import KeyPair
from connector.protocol import Role
from connector.store import OutboundMessage, ProcessRecord, Store, new_pid
from sluis.servers import serve_in_thread
from tests.connector.dsp_world import wait_until


@dataclass
class Peer:
    """A DSP peer that holds every request until released (``hold``), counting them."""

    hold: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    running: int = 0
    most_at_once: int = 0
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/{path:path}")
        async def take(path: str, request: Request) -> JSONResponse:
            await request.body()
            with self.lock:
                self.running += 1
                self.most_at_once = max(self.most_at_once, self.running)
            try:
                while self.hold and not self.released.is_set():
                    await asyncio.sleep(0.02)
            finally:
                with self.lock:
                    self.running -= 1
                    self.answered += 1
            return JSONResponse({}, status_code=200)

        return app


def _queue(store: Store, peer_id: str, url: str, count: int) -> list[str]:
    """``count`` processes with ``peer_id`` as counter-party, each owing it one message."""
    ids = []
    for _ in range(count):
        pid = new_pid()
        record = ProcessRecord(
            id=pid, kind="transfer", role=Role.CONSUMER, state="REQUESTED", version=0,
            counterparty_id=peer_id, counterparty_address=url, consumer_pid=pid,
        )
        message = OutboundMessage(f"{url}/transfers/request", peer_id, {"n": pid})
        store.create_process(record, outbox=[message])
        ids.append(pid)
    return ids


def _delivered(store: Store, process_ids: list[str]) -> int:
    with store.db.transaction(write=False) as tx:
        rows = tx.all("SELECT process_id FROM outbox WHERE delivered_at IS NOT NULL")
    wanted = set(process_ids)
    return sum(1 for row in rows if row["process_id"] in wanted)


@pytest.fixture
def store(storage_urls: Callable[[str], str], tmp_path: Path) -> Iterator[Store]:
    url = storage_urls("outbox")
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    opened = Store(url)
    opened.migrate()
    yield opened
    opened.close()


def test_a_peer_holding_every_answer_cannot_starve_the_others(store: Store) -> None:
    hostile, quick = Peer(hold=True), Peer()
    with ExitStack() as stack:
        hostile_url = stack.enter_context(serve_in_thread(hostile.app()))
        quick_url = stack.enter_context(serve_in_thread(quick.app()))
        # more messages for the hostile peer than there are senders in all
        held = _queue(store, "did:web:hostile.example", hostile_url, OUTBOX_SENDERS + 8)
        served = _queue(store, "did:web:quick.example", quick_url, 3)
        client = DspClient("did:web:us.example", KeyPair.generate(), address_policy=AddressPolicy(True))
        outbox = Outbox(store, client)
        outbox.start()
        try:
            wait_until(lambda: _delivered(store, served) == len(served), "the quick peer's messages")
            wait_until(lambda: hostile.running == OUTBOX_SENDERS_PER_PEER, "the hostile peer's senders")
            assert hostile.answered == 0  # still held: the quick peer was served beside it
            hostile.released.set()
            wait_until(lambda: _delivered(store, held) == len(held), "the hostile peer's messages")
        finally:
            hostile.released.set()
            outbox.stop()
    assert hostile.most_at_once == OUTBOX_SENDERS_PER_PEER


def test_a_claim_leaves_out_a_peer_at_its_cap(store: Store) -> None:
    first = _queue(store, "did:web:a.example", "http://a.example/dsp", 20)
    other = _queue(store, "did:web:b.example", "http://b.example/dsp", 2)
    claimed = store.claim_outbox("w", limit=32, per_peer=4, busy={"did:web:a.example": 1})
    peers = [item.peer for item in claimed]
    assert peers.count("did:web:a.example") == 3  # one already sending, three more
    assert {item.process_id for item in claimed if item.peer == "did:web:b.example"} == set(other)
    assert store.claim_outbox("w2", limit=32, per_peer=4, busy={"did:web:a.example": 4}) == []
    assert len(first) == 20


def test_a_lease_renewed_while_sending_is_not_taken_up_by_another_worker(store: Store) -> None:
    """Two workers on one database (two replicas): the first sends to a peer that answers after
    several leases; its lease is renewed meanwhile, so the second never takes the message up."""
    slow = Peer(hold=True)
    with serve_in_thread(slow.app()) as url, pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "OUTBOX_LEASE_SECONDS", 2.0)
        patch.setattr(outbox_module, "LEASE_RENEWAL_SECONDS", 0.25)
        ids = _queue(store, "did:web:slow.example", url, 1)
        client = DspClient("did:web:us.example", KeyPair.generate(), address_policy=AddressPolicy(True))
        first, second = Outbox(store, client), Outbox(Store(store.db.url), client)
        first.start()
        try:
            wait_until(lambda: slow.running == 1, "the first worker to be sending")
            second.start()  # polls every quarter second for due and expired messages
            expired = []
            for _ in range(16):  # over three leases' worth
                expired.append(store.claim_outbox("third-worker", limit=1))
                threading.Event().wait(0.4)
            slow.released.set()
            wait_until(lambda: _delivered(store, ids) == 1, "the slow message")
        finally:
            slow.released.set()
            first.stop()
            second.stop()
            second.store.close()
    assert all(claim == [] for claim in expired)
    assert slow.answered == 1
    assert slow.most_at_once == 1


def test_an_outcome_is_recorded_only_by_the_lease_holder(store: Store) -> None:
    _queue(store, "did:web:a.example", "http://a.example/dsp", 1)
    [item] = store.claim_outbox("old-worker", limit=1)
    later = store.claim_outbox("new-worker", limit=1, now=item_time(store, item.id) + 3600)
    assert [i.id for i in later] == [item.id]  # the old lease ran out and was taken up
    assert store.renew_outbox_leases("old-worker", [item.id]) == set()
    assert not store.outbox_delivered(item.id, worker="old-worker")
    assert store.outbox_delivered(item.id, worker="new-worker")


def item_time(store: Store, item_id: int) -> float:
    with store.db.transaction(write=False) as tx:
        row: Any = tx.one("SELECT claimed_until FROM outbox WHERE id = ?", (item_id,))
    return float(row["claimed_until"])
