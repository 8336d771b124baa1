"""`conclave demo`: a narrated simulated run of a 5-node Raft cluster."""

import typer


def demo() -> None:
    """Placeholder until the simulator lands."""
    raise typer.Exit(code=2)
