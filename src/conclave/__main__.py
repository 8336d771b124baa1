"""`python -m conclave` is the `conclave` command."""

from conclave.cli.main import main

main()
