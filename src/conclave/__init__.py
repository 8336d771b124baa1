"""Conclave: distributed decisions on a pure consensus core.

The package is layered (see DESIGN.md): pure protocol cores (`core`, `consensus`,
`apps`, ...) that never perform I/O, and a shell (`runtime`, `cli`, ...) that drives them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
