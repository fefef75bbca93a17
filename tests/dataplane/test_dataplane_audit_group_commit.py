"""Audit appends from concurrent reads are committed in groups and still form one intact chain.

Each thread stands for a read ending; its ``append`` must return its own committed entry
(a read's stream ends only after its entry is in the log), and the chain must verify exactly
as if the entries had been appended one by one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from connector.audit import AuditLog
from connector.audit.export import public_key_verifier
from connector.database import Database
from connector.identity import KeyPair

THREADS = 8
APPENDS = 25


def test_concurrent_appends_form_one_intact_chain_and_each_gets_its_own_entry(tmp_path: Path) -> None:
    _appends_from_threads(f"sqlite:///{tmp_path / 'audit.db'}")


@pytest.mark.postgres
def test_concurrent_appends_form_one_intact_chain_on_postgresql(postgres_url: str) -> None:
    _appends_from_threads(postgres_url)


def _appends_from_threads(storage: str) -> None:
    key = KeyPair.generate()
    database = Database(storage)
    log = AuditLog(database, key, "did:web:provider#key-1")
    returned: dict[tuple[int, int], int] = {}
    start = threading.Barrier(THREADS)

    def reads(worker: int) -> None:
        start.wait()
        for n in range(APPENDS):
            entry = log.append({"kind": "read", "worker": worker, "n": n})
            assert entry.body["worker"] == worker
            assert entry.body["n"] == n
            returned[(worker, n)] = entry.seq

    threads = [threading.Thread(target=reads, args=(worker,)) for worker in range(THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(returned) == THREADS * APPENDS
        assert sorted(returned.values()) == list(range(1, THREADS * APPENDS + 1))
        stored = {(entry.body["worker"], entry.body["n"]): entry.seq for entry in log.entries()}
        assert stored == returned
        assert log.verify(public_key_verifier(key.public_key)).intact
    finally:
        database.close()
