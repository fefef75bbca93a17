"""The connector's one database layer: pool, transactions, rows and the schema of every table.

Control plane (:mod:`connector.store`), data plane, audit log and pages all open the same
storage URL through :class:`Database`: SQLite in WAL mode by default, PostgreSQL (psycopg 3) for
several replicas. One pool per process, one way to run a unit of work
(``with db.transaction() as tx``; ``write=False`` for a lock-free read, ``exclusive=True`` for a
write serialised across replicas), rows as dicts, and one list of numbered migrations
(:mod:`connector.database.migrations`) that every component applies before its first use.
"""

from connector.database.migrations import MIGRATIONS
from connector.database.pool import Database, StoreError, Transaction, sqlite_path

__all__ = ["MIGRATIONS", "Database", "StoreError", "Transaction", "sqlite_path"]
