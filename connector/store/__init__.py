"""The control plane's persistence, on :mod:`connector.database` (SQLite WAL or PostgreSQL).

Compare-and-set transitions, one transaction per state change, an outbox for what must still
be sent, and the shared jti replay table (written with the step a token authorised, see
:mod:`connector.store.replay`). :class:`Store` is also the data plane's ``ContractState``.
"""

from connector.database import Database, StoreError, sqlite_path
from connector.store.replay import (
    DeferredReplay,
    TokenReplayed,
    deferral,
    deferred_replay,
    pending_replay,
)
from connector.store.store import (
    OUTBOX_LEASE_SECONDS,
    AgreementRecord,
    AssetRecord,
    ContractDefinition,
    LoggedMessage,
    OutboundMessage,
    OutboxItem,
    ProcessRecord,
    Store,
    new_pid,
)

__all__ = [
    "OUTBOX_LEASE_SECONDS",
    "AgreementRecord",
    "AssetRecord",
    "ContractDefinition",
    "Database",
    "DeferredReplay",
    "LoggedMessage",
    "OutboundMessage",
    "OutboxItem",
    "ProcessRecord",
    "Store",
    "StoreError",
    "TokenReplayed",
    "deferral",
    "deferred_replay",
    "new_pid",
    "pending_replay",
    "sqlite_path",
]
