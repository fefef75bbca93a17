"""The client an AI job imports: find data, get an agreement, read it, and record lineage."""

from connector.jobs.data import Address, ReadRecord, TransferReader
from connector.jobs.errors import JobError

__all__ = ["Address", "JobError", "ReadRecord", "TransferReader"]
