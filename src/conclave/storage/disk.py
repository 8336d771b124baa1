"""The `Disk` port: the few byte-level file operations the durable storage needs.

Rules:
- `FileStorage`, the WAL reader and the snapshot files do every I/O through a `Disk`, so the
  same code runs on the real file system (`OsDisk`) and on the simulator's disk model
  (`conclave.sim.disk.SimDisk`), which loses unsynced bytes and directory entries at a crash.
- Byte-oriented and minimal: whole-file reads, appends through an open `DiskFile`, fsync of a
  file and of a directory, rename (atomic replace), remove, truncate, list, size. Nothing else.
- Durability contract (what POSIX and ext4 give, and all the storage relies on): bytes written
  to a file are durable once that file is fsynced; a creation, rename or removal in a directory
  is durable once the directory is fsynced. Until then a crash may lose them.
- Errors are the built-in `OSError` subclasses: `FileNotFoundError` for a missing path,
  `FileExistsError` for an exclusive create over an existing file.
- No asyncio, threads or clocks here (DESIGN.md section 2): the simulator imports this package.
"""

import os
from pathlib import Path
from typing import Protocol


class DiskFile(Protocol):
    """A file open for appending."""

    def write(self, data: bytes) -> None:
        """Append all of `data` (not durable until `fsync`)."""
        ...

    def fsync(self) -> None:
        """Make every byte written so far durable."""
        ...

    def size(self) -> int:
        """The file's current length in bytes, durable or not."""
        ...

    def close(self) -> None:
        """Release the file; unsynced bytes stay wherever the disk has them."""
        ...


class Disk(Protocol):
    """The file system as the storage sees it; see the module docstring for the contract."""

    def make_dirs(self, directory: Path) -> None:
        """Create `directory` and its parents if missing."""
        ...

    def is_dir(self, path: Path) -> bool:
        """Whether `path` is an existing directory."""
        ...

    def list_dir(self, directory: Path) -> list[str]:
        """Names of the entries of `directory`, in no particular order."""
        ...

    def create(self, path: Path, *, exclusive: bool) -> DiskFile:
        """A new empty file open for appending (truncates an existing one unless exclusive)."""
        ...

    def open_append(self, path: Path) -> DiskFile:
        """An existing file open for appending at its end."""
        ...

    def read(self, path: Path) -> bytes:
        """The whole current content of a file."""
        ...

    def size(self, path: Path) -> int:
        """The current length of a file."""
        ...

    def truncate(self, path: Path, size: int) -> None:
        """Cut a file to `size` bytes (not durable until the file is fsynced)."""
        ...

    def rename(self, source: Path, target: Path) -> None:
        """Atomically replace `target` by `source` (durable after a directory fsync)."""
        ...

    def remove(self, path: Path) -> None:
        """Remove a file (durable after a directory fsync); missing is `FileNotFoundError`."""
        ...

    def fsync_dir(self, directory: Path) -> None:
        """Make creations, renames and removals in `directory` durable."""
        ...


class _OsFile:
    """A `DiskFile` on a real file descriptor (fsync is skipped when not `durable`)."""

    def __init__(self, fd: int, durable: bool = True) -> None:
        self._fd = fd
        self._durable = durable

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, full pipes)
            view = view[os.write(self._fd, view) :]

    def fsync(self) -> None:
        if self._durable:
            os.fsync(self._fd)

    def size(self) -> int:
        return os.fstat(self._fd).st_size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OsDisk:
    """The real file system, through `os` calls (real fsync, real directory fsync).

    `durable=False` skips every fsync: a benchmark or test mode that is NOT crash-safe (an
    acknowledged write can be lost when the machine, not just the process, fails).
    """

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable

    def make_dirs(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def list_dir(self, directory: Path) -> list[str]:
        return os.listdir(directory)

    def create(self, path: Path, *, exclusive: bool) -> DiskFile:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        flags |= os.O_EXCL if exclusive else os.O_TRUNC
        return _OsFile(os.open(path, flags, 0o644), self.durable)

    def open_append(self, path: Path) -> DiskFile:
        return _OsFile(os.open(path, os.O_WRONLY | os.O_APPEND), self.durable)

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def size(self, path: Path) -> int:
        return path.stat().st_size

    def truncate(self, path: Path, size: int) -> None:
        os.truncate(path, size)

    def rename(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def remove(self, path: Path) -> None:
        path.unlink()

    def fsync_dir(self, directory: Path) -> None:
        if not self.durable:
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = ["Disk", "DiskFile", "OsDisk"]
