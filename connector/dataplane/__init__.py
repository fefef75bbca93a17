"""The data plane: job-scoped tokens and policy-checked, sandboxed DuckDB reads at every read.

``DataPlane`` issues access (``issue_access`` -> ``DataAddress``), serves reads through its
``router()`` (mounted at ``/data``), and revokes (``revoke``). It reads contract state through
``ContractState`` at every read, asks ``policies`` for the decision and the data scope, runs
queries in a locked-down DuckDB (``sandbox``) after ``sql_guard`` has checked them, and writes a
signed hash-chained audit entry per read and per denial.
"""

from connector.dataplane.contract_state import (
    STARTED,
    AgreementView,
    AssetData,
    ContractState,
    TransferView,
)
from connector.dataplane.encoders import ARROW_STREAM, CSV, PARQUET
from connector.dataplane.errors import (
    AccessDenied,
    BadQuery,
    Busy,
    DataPlaneError,
    InvalidToken,
    NotFound,
    QueryRefused,
    ResultTooLarge,
)
from connector.dataplane.plane import DataAddress, DataPlane, DataPlaneLimits
from connector.dataplane.sandbox import SandboxLimits
from connector.dataplane.sql_guard import GRANTED_VIEW, GuardedQuery, finalize, parse_query
from connector.dataplane.tokens import make_proof

__all__ = [
    "ARROW_STREAM",
    "CSV",
    "GRANTED_VIEW",
    "PARQUET",
    "STARTED",
    "AccessDenied",
    "AgreementView",
    "AssetData",
    "BadQuery",
    "Busy",
    "ContractState",
    "DataAddress",
    "DataPlane",
    "DataPlaneError",
    "DataPlaneLimits",
    "GuardedQuery",
    "InvalidToken",
    "NotFound",
    "QueryRefused",
    "ResultTooLarge",
    "SandboxLimits",
    "TransferView",
    "finalize",
    "make_proof",
    "parse_query",
]
