"""`conclave sim ...`: run the deterministic simulator from the command line."""

import typer

app = typer.Typer(help="Deterministic simulation under faults.", no_args_is_help=True)


@app.command("raft")
def raft() -> None:
    """Placeholder until the simulator lands."""
    raise typer.Exit(code=2)
