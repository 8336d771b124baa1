"""`conclave wal ...`: look at a node's storage directory.

Rules: thin and read-only; the library (`conclave.storage.inspect`) does the work. Exit code 1
when the directory is missing or would be refused on open (corrupted WAL or snapshot); a torn
tail is not an error (opening would truncate it).
"""

from pathlib import Path

import typer

from conclave.storage import StorageError, inspect_directory

app = typer.Typer(help="Write-ahead log tools.", no_args_is_help=True)


@app.command("inspect")
def inspect(directory: Path = typer.Argument(..., help="A node's storage directory.")) -> None:
    """Dump segments, records, snapshots and the recovery verdict."""
    try:
        inspection = inspect_directory(directory)
    except StorageError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    for line in inspection.lines():
        typer.echo(line)
    if not inspection.ok:
        typer.echo(f"error: {inspection.verdict()}", err=True)
        raise typer.Exit(1)


@app.callback()
def _group() -> None:
    """Write-ahead log tools."""


__all__ = ["app"]
