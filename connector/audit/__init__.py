"""Tamper-evident evidence of every data-plane read and denial: a signed, hash-chained log.

``AuditLog`` appends to and reads the chain in the connector's database (a
:class:`connector.database.Database`, shared with store and data plane); ``verify_chain``
checks any sequence of entries offline; ``export_log`` / ``verify_export`` write and check the
JSON Lines files that compliance officers of provider and consumer keep.
"""

from connector.audit.chain import (
    GENESIS_HASH,
    AuditEntry,
    ChainProblem,
    ChainReport,
    body_hash,
    entry_hash,
    seal,
    verify_chain,
)
from connector.audit.errors import AuditError
from connector.audit.export import ExportSummary, ExportVerification, export_log, verify_export
from connector.audit.log import AuditLog, Signer

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "ChainProblem",
    "ChainReport",
    "ExportSummary",
    "ExportVerification",
    "Signer",
    "body_hash",
    "entry_hash",
    "export_log",
    "seal",
    "verify_chain",
    "verify_export",
]
