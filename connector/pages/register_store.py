"""Which offers a provider lists in its public transparency register (its own choice, per offer).

A small table next to the connector's own, in the same database (SQLite or PostgreSQL): one row
per contract definition the provider opted in. Nothing is listed unless a row says so. The table
is migration 2 of :mod:`connector.database.migrations`.
"""

from __future__ import annotations

from typing import Final

from connector.database import Database

# Contract definitions one connector offers are tens to thousands; the register reads them all.
MAX_LISTED_DEFINITIONS: Final = 100_000


class RegisterChoices:
    """Per contract definition: are its agreements shown in the public register?"""

    def __init__(self, database: Database) -> None:
        self._db = database
        database.ensure_migrated()

    def listed(self) -> frozenset[str]:
        with self._db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT definition_id FROM sluis_pages_register WHERE listed = 1 LIMIT ?",
                (MAX_LISTED_DEFINITIONS,),
            )
        return frozenset(str(row["definition_id"]) for row in rows)

    def choose(self, definition_id: str, listed: bool) -> None:
        with self._db.transaction(exclusive=True) as tx:
            tx.execute("DELETE FROM sluis_pages_register WHERE definition_id = ?", (definition_id,))
            tx.execute(
                "INSERT INTO sluis_pages_register (definition_id, listed) VALUES (?, ?)",
                (definition_id, 1 if listed else 0),
            )
