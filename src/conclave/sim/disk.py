"""`SimDisk`: a deterministic in-memory file system with crash semantics, behind the `Disk` port.

The simulator runs the real `FileStorage` (record encoding, group commit, snapshot files,
recovery with torn-tail truncation) on this disk, and `crash(rng)` decides what a power loss
leaves behind. The model follows what POSIX plus ext4 (data=ordered, the default) guarantee:

- File content. Every file has its current bytes and its durable bytes (as of its last fsync).
  A crash keeps the durable bytes plus a random prefix of the bytes appended since, because the
  page cache writes a file back front to back in the common case and an interrupted write
  leaves a prefix. With probability `garble_p` the last kept byte is garbled: the torn sector
  of the interrupted write. Only that one byte, so the damage always sits in the final WAL
  record, which is the damage the WAL's recovery rules promise to repair (a torn tail).
- Directory entries. Creations, renames and removals are durable only once their directory
  is fsynced. They are journaled in order, so a crash keeps a random PREFIX of the unsynced
  operations of each directory (often none: everything since the last directory fsync is
  reverted). A rename is one atomic operation. A file whose name is lost is gone with its data.
- Open files become unusable at a crash (the process died); the storage is reopened afresh.

Simplifications (deliberate; each would make the WAL refuse to open by design, which is a
different test): no scattered sector damage inside the unsynced tail, no zero-filled or
garbage extension past the written length (ext4 data=ordered never exposes it), no
reordering of unsynced appends, no bit rot of durable bytes, no ENOSPC or EIO. A truncation
or rewrite since the last fsync (which `FileStorage` fsyncs at once) survives either whole or
not at all. Directories themselves (`make_dirs`) are durable at once.

Rules: every random choice comes from the `random.Random` given to `crash`; iteration is over
sorted paths, so a run is a pure function of its seed.
"""

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from conclave.storage.disk import DiskFile

GARBLE_P_DEFAULT: Final = 0.3


@dataclass(slots=True)
class _Inode:
    """One file's bytes: what a reader sees now and what an fsync made durable."""

    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""


@dataclass(frozen=True, slots=True)
class _Link:
    """Directory operation: `name` now refers to `inode` (create, or the target of a rename)."""

    name: str
    inode: _Inode
    unlink: str | None = None  # a rename also removes its source name, atomically


@dataclass(frozen=True, slots=True)
class _Unlink:
    """Directory operation: `name` is removed."""

    name: str


_DirOp = _Link | _Unlink


@dataclass(frozen=True, slots=True)
class CrashReport:
    """What one crash did to the disk."""

    unsynced_bytes: int  # bytes written but not fsynced, over every surviving file
    kept_bytes: int  # of those, how many survived
    garbled_files: int  # files whose last kept byte was garbled (torn writes)
    dir_ops_unsynced: int  # directory operations not yet made durable by a directory fsync
    dir_ops_kept: int  # of those, how many survived


def _apply(names: dict[str, _Inode], op: _DirOp) -> None:
    if isinstance(op, _Unlink):
        names.pop(op.name, None)
        return
    if op.unlink is not None:
        names.pop(op.unlink, None)
    names[op.name] = op.inode


class _SimFile:
    """A `DiskFile` on a `SimDisk` inode; unusable once the disk crashed."""

    def __init__(self, disk: "SimDisk", path: Path, inode: _Inode) -> None:
        self._disk = disk
        self._path = path
        self._inode = inode
        self._generation = disk.generation
        self._closed = False

    def _check(self) -> _Inode:
        if self._closed or self._generation != self._disk.generation:
            raise OSError(f"{self._path}: file handle closed or from before a crash")
        return self._inode

    def write(self, data: bytes) -> None:
        self._check().data += data
        self._disk.bytes_written += len(data)

    def fsync(self) -> None:
        inode = self._check()
        inode.durable = bytes(inode.data)
        self._disk.fsyncs += 1

    def size(self) -> int:
        return len(self._check().data)

    def close(self) -> None:
        self._closed = True


class SimDisk:
    """An in-memory `Disk` that can crash; see the module docstring for the model."""

    def __init__(self) -> None:
        self._dirs: dict[Path, dict[str, _Inode]] = {}  # current names per directory
        self._durable: dict[Path, dict[str, _Inode]] = {}  # names as of the last dir fsync
        self._journal: dict[Path, list[_DirOp]] = {}  # directory operations since then
        self.generation = 0  # bumped by every crash: older file handles are dead
        self.fsyncs = 0
        self.dir_fsyncs = 0
        self.bytes_written = 0
        self.crashes = 0

    # -- the Disk port ----------------------------------------------------------------------

    def make_dirs(self, directory: Path) -> None:
        for path in (*reversed(directory.parents), directory):
            if path not in self._dirs:
                self._dirs[path] = {}
                self._durable[path] = {}
                self._journal[path] = []

    def is_dir(self, path: Path) -> bool:
        return path in self._dirs

    def list_dir(self, directory: Path) -> list[str]:
        return sorted(self._names(directory))

    def create(self, path: Path, *, exclusive: bool) -> DiskFile:
        names = self._names(path.parent)
        inode = names.get(path.name)
        if inode is not None:
            if exclusive:
                raise FileExistsError(str(path))
            inode.data.clear()  # O_TRUNC: same file, emptied (durable after its fsync)
            return _SimFile(self, path, inode)
        inode = _Inode()
        self._record(path.parent, _Link(path.name, inode))
        return _SimFile(self, path, inode)

    def open_append(self, path: Path) -> DiskFile:
        return _SimFile(self, path, self._inode(path))

    def read(self, path: Path) -> bytes:
        return bytes(self._inode(path).data)

    def size(self, path: Path) -> int:
        return len(self._inode(path).data)

    def truncate(self, path: Path, size: int) -> None:
        del self._inode(path).data[size:]

    def rename(self, source: Path, target: Path) -> None:
        inode = self._inode(source)
        if source.parent != target.parent:
            raise OSError("SimDisk renames only within one directory")
        self._record(source.parent, _Link(target.name, inode, unlink=source.name))

    def remove(self, path: Path) -> None:
        self._inode(path)  # FileNotFoundError when missing
        self._record(path.parent, _Unlink(path.name))

    def fsync_dir(self, directory: Path) -> None:
        self._durable[directory] = dict(self._names(directory))
        self._journal[directory] = []
        self.dir_fsyncs += 1

    # -- crash ------------------------------------------------------------------------------

    def crash(self, rng: random.Random, *, garble_p: float = GARBLE_P_DEFAULT) -> CrashReport:
        """Power loss: keep what is durable plus what `rng` lets survive (see the docstring)."""
        self.generation += 1
        self.crashes += 1
        ops_unsynced = ops_kept = 0
        for directory in sorted(self._dirs):
            journal = self._journal[directory]
            kept = rng.randint(0, len(journal))
            names = dict(self._durable[directory])
            for op in journal[:kept]:
                _apply(names, op)
            self._dirs[directory] = names
            self._durable[directory] = dict(names)
            self._journal[directory] = []
            ops_unsynced += len(journal)
            ops_kept += kept
        unsynced = kept_bytes = garbled = 0
        for directory in sorted(self._dirs):
            for name in sorted(self._dirs[directory]):
                lost, kept_now, torn = _crash_file(self._dirs[directory][name], rng, garble_p)
                unsynced += lost
                kept_bytes += kept_now
                garbled += torn
        return CrashReport(unsynced, kept_bytes, garbled, ops_unsynced, ops_kept)

    # -- helpers ----------------------------------------------------------------------------

    def _names(self, directory: Path) -> dict[str, _Inode]:
        names = self._dirs.get(directory)
        if names is None:
            raise FileNotFoundError(str(directory))
        return names

    def _inode(self, path: Path) -> _Inode:
        inode = self._names(path.parent).get(path.name)
        if inode is None:
            raise FileNotFoundError(str(path))
        return inode

    def _record(self, directory: Path, op: _DirOp) -> None:
        _apply(self._names(directory), op)
        self._journal[directory].append(op)

    def durable_bytes(self, path: Path) -> bytes:
        """The bytes of `path` that an fsync made durable (for tests)."""
        return self._inode(path).durable


def _crash_file(inode: _Inode, rng: random.Random, garble_p: float) -> tuple[int, int, int]:
    """Decide what of one file survives; returns (unsynced bytes, kept bytes, garbled 0/1)."""
    durable, data = inode.durable, bytes(inode.data)
    if data.startswith(durable):
        tail = data[len(durable) :]
        kept = rng.randint(0, len(tail))
        survived = bytearray(durable + tail[:kept])
        torn = kept > 0 and rng.random() < garble_p
        if torn:
            # The torn sector: the last byte that reached the platter is not what was written.
            survived[-1] ^= rng.randint(1, 255)
        inode.data = survived
        inode.durable = bytes(survived)
        return len(tail), kept, int(torn)
    # Truncated or rewritten since the last fsync: that change survives whole or not at all.
    survived_whole = rng.random() < 0.5
    result = data if survived_whole else durable
    inode.data = bytearray(result)
    inode.durable = result
    return len(data), len(data) if survived_whole else 0, 0


__all__ = ["GARBLE_P_DEFAULT", "CrashReport", "SimDisk"]
