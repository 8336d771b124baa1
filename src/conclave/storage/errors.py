"""Errors of the durable storage: each names the file (and byte offset) at fault.

Rules: a torn tail is not an error (recovery truncates it and reports it); everything else that
does not decode is refused with one of these, so an operator can find the damage.
"""

from pathlib import Path


class StorageError(Exception):
    """The storage directory cannot be used as it is."""


class WalCorruptionError(StorageError):
    """A WAL record that is not the torn tail of the last segment does not decode."""

    def __init__(self, file: Path, offset: int, reason: str) -> None:
        super().__init__(f"WAL corrupted in {file} at byte offset {offset}: {reason}")
        self.file = file
        self.offset = offset
        self.reason = reason


class SnapshotCorruptionError(StorageError):
    """A snapshot file the WAL refers to is missing or fails its CRC."""

    def __init__(self, file: Path, reason: str) -> None:
        super().__init__(f"snapshot file {file} is unusable: {reason}")
        self.file = file
        self.reason = reason


__all__ = ["SnapshotCorruptionError", "StorageError", "WalCorruptionError"]
