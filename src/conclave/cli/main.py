"""The `conclave` command: thin; it parses arguments into typed settings and calls the library.

Sub-commands live in their own modules and are mounted here.
"""

import typer

from conclave.cli import certs as certs_cmd
from conclave.cli import cluster as cluster_cmd
from conclave.cli import decide as decide_cmd
from conclave.cli import demo as demo_cmd
from conclave.cli import ops as ops_cmd
from conclave.cli import serve as serve_cmd
from conclave.cli import sim as sim_cmd
from conclave.cli import wal as wal_cmd

app = typer.Typer(
    name="conclave",
    help="Conclave: distributed decisions on a pure consensus core.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sim_cmd.app, name="sim")
app.add_typer(wal_cmd.app, name="wal")
app.command("demo")(demo_cmd.demo)
app.command("serve")(serve_cmd.serve)
app.add_typer(cluster_cmd.app, name="cluster")
app.add_typer(certs_cmd.certs_app, name="certs")
app.add_typer(ops_cmd.kv_app, name="kv")
app.add_typer(ops_cmd.member_app, name="member")
app.add_typer(ops_cmd.leader_app, name="leader")
app.command("status")(ops_cmd.status)
app.add_typer(decide_cmd.kinds_app, name="kinds")
app.add_typer(decide_cmd.decisions_app, name="decisions")
app.command("propose")(decide_cmd.propose)
app.command("vote")(decide_cmd.vote)


def main() -> None:
    """Entry point of the `conclave` console script."""
    app()


__all__ = ["app", "main"]
