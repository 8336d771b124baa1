"""Command line interface of conclave."""
