"""`conclave wal inspect DIR` on a good, a torn, a corrupted and a missing directory."""

from pathlib import Path

from typer.testing import CliRunner

from conclave.cli.main import app
from conclave.core.effects import ConfState, Entry, HardState, Snapshot, SnapshotMeta
from conclave.storage import FileStorage
from conclave.storage.wal import list_segments

runner = CliRunner()


def _populate(directory: Path) -> Path:
    conf = ConfState(voters=(1, 2, 3))
    with FileStorage(directory) as store:
        store.save(HardState(term=2, vote=1, commit=1), None, ())
        store.save(None, None, tuple(Entry(term=2, index=i, data=b"abc") for i in (1, 2, 3)))
        store.save(None, Snapshot(meta=SnapshotMeta(index=2, term=2, conf=conf), data=b"x"), ())
        store.save(None, None, (Entry(term=2, index=4, data=b"last"),))
        store.sync()
    return list_segments(directory)[-1][1]


def test_inspect_a_clean_directory(tmp_path: Path) -> None:
    _populate(tmp_path)
    result = runner.invoke(app, ["wal", "inspect", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "segment wal-" in result.output
    assert "HARD_STATE term=2 vote=1 commit=1" in result.output
    assert "ENTRY term=2 index=4 kind=normal data=4B" in result.output
    assert "SNAPSHOT_MARKER index=2 term=2 voters=[1, 2, 3]" in result.output
    assert "snapshot snap-0000000000000002-0000000000000002.snap index=2" in result.output
    assert "verdict: clean" in result.output


def test_inspect_a_torn_directory_reports_without_truncating(tmp_path: Path) -> None:
    segment = _populate(tmp_path)
    segment.write_bytes(segment.read_bytes()[:-2])
    size = segment.stat().st_size
    result = runner.invoke(app, ["wal", "inspect", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"verdict: torn tail truncated at {segment}:" in result.output
    assert segment.stat().st_size == size


def test_inspect_a_corrupted_directory_fails(tmp_path: Path) -> None:
    segment = _populate(tmp_path)
    data = bytearray(segment.read_bytes())
    data[16 + 9 + 1] ^= 0xFF  # inside the first record's payload
    segment.write_bytes(bytes(data))
    result = runner.invoke(app, ["wal", "inspect", str(tmp_path)])
    assert result.exit_code == 1
    assert f"corrupted at {segment}:16" in result.output


def test_inspect_a_missing_directory_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["wal", "inspect", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "is not a directory" in result.output
