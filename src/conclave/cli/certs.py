"""`conclave certs ...`: development certificates for mutual TLS between nodes.

Rules: thin; `conclave.runtime.tls.generate_dev_certs` does the work. For development and
tests only: the CA key is written next to the certificates. Exit code 1, with nothing written,
when a target file exists and `--force` is not given, or an argument is invalid.
"""

from pathlib import Path

import typer

from conclave.runtime.tls import CA_CERT_FILE, generate_dev_certs, node_cert_file, node_key_file

certs_app = typer.Typer(help="Development TLS certificates.", no_args_is_help=True)


@certs_app.command("init")
def init(
    directory: Path = typer.Option(..., "--dir", help="Where to write the files."),
    nodes: int = typer.Option(3, "--nodes", min=1, help="Number of node certificates (1..n)."),
    hosts: list[str] = typer.Option(
        [], "--host", help="Extra subjectAltName (IP or DNS name); repeat for several."
    ),
    days: int = typer.Option(365, "--days", min=1, help="Validity of every certificate."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Create a CA and node-<i>.pem / node-<i>-key.pem for nodes 1..n (EC P-256)."""
    try:
        written = generate_dev_certs(directory, list(range(1, nodes + 1)), hosts, days, force=force)
    except FileExistsError as error:
        typer.echo(f"error: {error}; pass --force to overwrite", err=True)
        raise typer.Exit(1) from None
    except (ValueError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo("start node 1 with (likewise for the other nodes):")
    typer.echo(
        f"  conclave serve --tls-cert {node_cert_file(directory, 1)}"
        f" --tls-key {node_key_file(directory, 1)} --tls-ca {directory / CA_CERT_FILE}"
    )


@certs_app.callback()
def _group() -> None:
    """Development TLS certificates."""


__all__ = ["certs_app"]
