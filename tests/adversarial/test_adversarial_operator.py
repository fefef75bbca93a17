"""Operator mistakes an attacker on the same host profits from: secrets left readable.

The connector's database holds credentials - the authorization a consumer gave for its push
destination, access tokens, received data addresses - so another account on the provider's
machine must not be able to read it, whatever the process umask.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from connector.database import Database


def test_the_connector_database_and_its_journal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # a common default: files world-readable
    try:
        database = Database(f"sqlite:///{tmp_path / 'state' / 'connector.db'}")
        with database.transaction() as tx:
            tx.execute("CREATE TABLE secrets (value TEXT)")
            tx.execute("INSERT INTO secrets VALUES (?)", ("Bearer destination-credential",))
        files = sorted((tmp_path / "state").glob("connector.db*"))
        assert files, "the database was not created"
        for path in files:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path.name} has mode {oct(mode)}"
        database.close()
    finally:
        os.umask(previous)
