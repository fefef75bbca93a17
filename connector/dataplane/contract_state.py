"""What the data plane needs to know about contracts, read fresh at every read.

The control plane (the connector's store) owns transfers, agreements and assets; the data
plane only *reads* them, through this narrow protocol, at every single read. There is no
cache on purpose: a terminated agreement or transfer must stop the very next read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

#: The only transfer state in which data may flow (DSP 2025-1 transfer process).
STARTED = "STARTED"


@dataclass(frozen=True)
class TransferView:
    """One transfer process as the data plane sees it (bound to an agreement and a job)."""

    id: str
    state: str
    agreement_id: str
    consumer_id: str
    provider_id: str
    asset_id: str
    job_id: str | None = None
    purpose: str | None = None
    compute_site: str | None = None
    #: The correlation id of the negotiation behind the agreement (written into audit entries).
    correlation_id: str | None = None


@dataclass(frozen=True)
class AgreementView:
    """One contract agreement: its ODRL policy (JSON-LD or DSP compact form) and whether it still holds."""

    id: str
    policy: dict[str, Any] = field(hash=False)
    terminated: bool
    consumer_id: str
    provider_id: str
    asset_id: str


@dataclass(frozen=True)
class AssetData:
    """Where an asset's data lives: ``kind`` is ``parquet``, ``csv`` or ``duckdb``; ``path`` is absolute."""

    kind: str
    path: str
    table: str | None = None


class ContractState(Protocol):
    """Read-only view of the connector's contract store; implemented by the connector's storage layer.

    Called at every read, never cached, so revocation takes effect at the next read.
    """

    def transfer(self, transfer_id: str) -> TransferView | None: ...

    def agreement(self, agreement_id: str) -> AgreementView | None: ...

    def asset_data(self, asset_id: str) -> AssetData | None: ...
