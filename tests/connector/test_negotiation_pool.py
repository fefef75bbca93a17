"""The connection pool every step of a negotiation goes through: with every connection out, a unit
of work waits for one and gets the one given back; a connection that breaks frees its place."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from connector.database import pool
from connector.database.pool import Database


def test_a_unit_of_work_waits_for_a_connection_given_back(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'pool.db'}")
    held = threading.Barrier(pool.POOL_SIZE + 1)
    release = threading.Event()
    seen: list[int] = []

    def hold() -> None:
        with db.transaction(write=False) as tx:
            tx.one("SELECT 1 AS one")
            held.wait()
            release.wait()

    holders = [threading.Thread(target=hold) for _ in range(pool.POOL_SIZE)]
    for thread in holders:
        thread.start()
    held.wait()  # every connection is out

    def late() -> None:
        with db.transaction(write=False) as tx:
            row = tx.one("SELECT 2 AS two")
            seen.append(row["two"] if row else 0)

    waiter = threading.Thread(target=late)
    waiter.start()
    assert seen == []
    release.set()
    waiter.join(timeout=60)
    for thread in holders:
        thread.join(timeout=60)
    assert seen == [2]
    assert db._opened == pool.POOL_SIZE  # the waiter took a connection given back, opened none


def test_a_broken_connection_frees_its_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "POOL_SIZE", 1)
    db = Database(f"sqlite:///{tmp_path / 'pool.db'}")
    with pytest.raises(sqlite3.OperationalError), db.transaction() as tx:
        tx.execute("SELECT * FROM no_such_table")
    assert db._opened == 0
    with db.transaction(write=False) as tx:  # the one place is free again
        assert tx.one("SELECT 3 AS three") == {"three": 3}
    db.close()
    assert db._opened == 0
