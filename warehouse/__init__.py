"""Storage: article rows -> partitioned Parquet, quarantine, incremental state. No Prefect here."""

from warehouse.errors import CommitConflict, JournalError, LockTimeout, PartitionError, TransientError, WarehouseError
from warehouse.layout import DataRoot, Partition, validate_source
from warehouse.quarantine import QUARANTINE_SCHEMA, QuarantineRecord, write_quarantine
from warehouse.schema import ARTICLE_SCHEMA, arrow_schema, articles_to_table
from warehouse.state import FileState, StateStore
from warehouse.writer import PartitionWrite, read_partition, upsert_partition, write_spill

__all__ = [
    "ARTICLE_SCHEMA",
    "QUARANTINE_SCHEMA",
    "CommitConflict",
    "DataRoot",
    "FileState",
    "JournalError",
    "LockTimeout",
    "Partition",
    "PartitionError",
    "PartitionWrite",
    "QuarantineRecord",
    "StateStore",
    "TransientError",
    "WarehouseError",
    "arrow_schema",
    "articles_to_table",
    "read_partition",
    "upsert_partition",
    "validate_source",
    "write_quarantine",
    "write_spill",
]
