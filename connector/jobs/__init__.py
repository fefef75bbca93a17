"""The client an AI job imports: find data, get an agreement, read it, and record lineage.

``Job`` searches the catalogue, negotiates (or reuses) an agreement and starts a transfer bound
to the job through the consumer connector's management API; ``Dataset.read()`` /
``Dataset.query(sql)`` return ``pyarrow.Table`` (``.to_pandas()`` for pandas), refreshing the
key-bound token by themselves; ``Job.lineage()`` is the PROV-O record of what the job used.
"""

from connector.jobs.client import Dataset, Job
from connector.jobs.data import Address, ReadRecord, TransferReader
from connector.jobs.errors import JobError
from connector.jobs.lineage import LINEAGE_CONTEXT, DatasetUse, lineage_record

__all__ = [
    "LINEAGE_CONTEXT",
    "Address",
    "Dataset",
    "DatasetUse",
    "Job",
    "JobError",
    "ReadRecord",
    "TransferReader",
    "lineage_record",
]
