"""A progress bar for long commands, shown only on a terminal.

Rules: the bar goes to stderr and only when stderr is a terminal, so piped output, CI logs and
tests see exactly the lines the command prints (one per seed), and nothing else. The bar is
transient: it disappears when the work is done.
"""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


def _nothing() -> None:
    return None


@contextmanager
def progress(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A function to call once per finished item (a no-op unless stderr is a terminal)."""
    if not sys.stderr.isatty():
        yield _nothing
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(label, total=total)
    with bar:
        yield lambda: bar.advance(task)


__all__ = ["progress"]
