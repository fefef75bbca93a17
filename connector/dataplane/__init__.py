"""The data plane: job-scoped tokens and policy-checked, sandboxed DuckDB reads at every read."""

from connector.dataplane.contract_state import (
    STARTED,
    AgreementView,
    AssetData,
    ContractState,
    TransferView,
)

__all__ = [
    "STARTED",
    "AgreementView",
    "AssetData",
    "ContractState",
    "TransferView",
]
