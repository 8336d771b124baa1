"""Durable storage (shell): a segmented WAL and snapshot files behind the `Storage` port.

See `records` (layouts), `wal` (recovery rules), `snapshots` (snapshot files) and
`file_storage` (the durability contract). This package does I/O; it never imports asyncio.
"""

from conclave.storage.errors import SnapshotCorruptionError, StorageError, WalCorruptionError
from conclave.storage.file_storage import DEFAULT_SEGMENT_BYTES_MAX, FileStorage, RecoveryReport
from conclave.storage.inspect import Inspection, inspect_directory

__all__ = [
    "DEFAULT_SEGMENT_BYTES_MAX",
    "FileStorage",
    "RecoveryReport",
    "Inspection",
    "inspect_directory",
    "SnapshotCorruptionError",
    "StorageError",
    "WalCorruptionError",
]
