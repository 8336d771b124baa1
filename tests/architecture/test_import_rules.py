"""Enforce DESIGN.md sections 2-3: pure packages stay pure, layers import downwards only.

Every module under src/conclave is parsed (not imported) and each import is checked:
- pure packages (core, consensus, replication, decision, apps) import no asyncio, time,
  socket, threading, os, uuid, secrets, subprocess, selectors or files helpers, and never call
  module-level functions of `random` (a `random.Random` instance is injected instead);
- pure packages import nothing from the shell (runtime, storage, codec, api, client, dashboard,
  cli, observability) nor from the simulator;
- above `core`, nothing imports `consensus` except the shell and the simulator;
- `sim` imports the pure layers, `runtime.driver` and `storage` only, never asyncio;
- `storage` imports no asyncio, socket, threading, time or clock: the simulator runs the real
  WAL on its simulated disk, so storage must stay single-threaded and free of wall time.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "conclave"

PURE_PACKAGES = ("core", "consensus", "replication", "decision", "apps")
SHELL_PACKAGES = (
    "runtime",
    "storage",
    "codec",
    "api",
    "client",
    "dashboard",
    "cli",
    "observability",
)
FORBIDDEN_IN_PURE = (
    "asyncio",
    "time",
    "socket",
    "threading",
    "os",
    "uuid",
    "secrets",
    "subprocess",
    "selectors",
    "multiprocessing",
    "concurrent",
    "datetime",
    "pathlib",
    "shutil",
    "tempfile",
    "io",
)
RANDOM_MODULE_FUNCTIONS = (
    "random",
    "randint",
    "randrange",
    "choice",
    "choices",
    "shuffle",
    "uniform",
    "sample",
    "seed",
    "gauss",
    "getrandbits",
    "randbytes",
)


@dataclass(frozen=True)
class ImportSite:
    module: str  # dotted module name of the importing file
    imported: str  # dotted name imported
    line: int


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[ImportSite]:
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module_name(path) if path.is_relative_to(SRC.parent) else path.stem
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportSite(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield ImportSite(module, node.module, node.lineno)
            for alias in node.names:
                yield ImportSite(module, f"{node.module}.{alias.name}", node.lineno)


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _python_files() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".", maxsplit=1)[0]


def _pure_files() -> list[Path]:
    return [p for p in _python_files() if _layer(_module_name(p)) in PURE_PACKAGES]


def test_source_tree_is_found() -> None:
    assert len(_pure_files()) >= 5, "the import-rule test must see the pure packages"


def _forbidden_imports(path: Path) -> list[tuple[str, int]]:
    return [
        (site.imported, site.line)
        for site in _imports(path)
        if _top(site.imported) in FORBIDDEN_IN_PURE
    ]


def _global_random_uses(path: Path) -> list[tuple[str, int]]:
    bad: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "random":
            bad += [(a.name, node.lineno) for a in node.names if a.name != "Random"]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "random"
            and node.func.attr in RANDOM_MODULE_FUNCTIONS
        ):
            bad.append((f"random.{node.func.attr}", node.lineno))
    return bad


def _shell_imports(path: Path) -> list[tuple[str, int]]:
    return [
        (site.imported, site.line)
        for site in _imports(path)
        if site.imported.startswith("conclave.")
        and site.imported.split(".")[1] in (*SHELL_PACKAGES, "sim")
    ]


def pure_violations(path: Path) -> list[tuple[str, int]]:
    """Every breach of the pure-package rules in one file."""
    return _forbidden_imports(path) + _global_random_uses(path) + _shell_imports(path)


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_pure_packages_import_no_io_clock_threads_global_random_or_shell(path: Path) -> None:
    assert not pure_violations(path), f"{path}: breaks DESIGN.md section 3"


def test_the_rules_catch_planted_violations(tmp_path: Path) -> None:
    """The check has teeth: each kind of breach in a planted module is reported."""
    planted = tmp_path / "conclave" / "core" / "bad.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(
        "import time\nimport os.path\nfrom random import shuffle\nimport random\n"
        "from conclave.runtime import driver\nx = random.randint(1, 2)\n"
    )
    found = {name for name, _ in pure_violations(planted)}
    assert {"time", "os.path", "shuffle", "random.randint", "conclave.runtime"} <= found


def test_only_shell_and_simulator_import_consensus() -> None:
    allowed = {"consensus", "sim", *SHELL_PACKAGES}
    offending = []
    for path in _python_files():
        module = _module_name(path)
        for site in _imports(path):
            if site.imported.startswith("conclave.consensus") and _layer(module) not in allowed:
                offending.append((module, site.imported, site.line))
    assert not offending, f"state machines must see the log only through core: {offending}"


# The simulator may use the real storage (the WAL on its `SimDisk`, to check recovery under
# torn writes): storage is deterministic given its `Disk`, and the rule below keeps it free
# of asyncio, sockets, threads and clocks.
SIM_MAY_IMPORT = ("conclave.runtime.driver", "conclave.storage")
NO_CONCURRENCY_OR_CLOCK = ("asyncio", "socket", "threading", "time", "datetime", "selectors")


def test_simulator_uses_only_pure_layers_the_driver_and_storage() -> None:
    offending = []
    for path in _python_files():
        module = _module_name(path)
        if _layer(module) != "sim":
            continue
        for site in _imports(path):
            if _top(site.imported) in NO_CONCURRENCY_OR_CLOCK:
                offending.append((module, site.imported, site.line))
            if site.imported.startswith("conclave."):
                layer = site.imported.split(".")[1]
                allowed = site.imported.startswith(SIM_MAY_IMPORT)
                if layer in SHELL_PACKAGES and not allowed:
                    offending.append((module, site.imported, site.line))
    assert not offending, f"the simulator must stay single-threaded and pure: {offending}"


def test_storage_has_no_concurrency_clock_or_upper_layers() -> None:
    offending = []
    for path in _python_files():
        module = _module_name(path)
        if _layer(module) != "storage":
            continue
        for site in _imports(path):
            if _top(site.imported) in NO_CONCURRENCY_OR_CLOCK:
                offending.append((module, site.imported, site.line))
            if site.imported.startswith("conclave."):
                layer = site.imported.split(".")[1]
                if layer not in ("core", "storage"):
                    offending.append((module, site.imported, site.line))
    assert offending == [], f"storage must stay usable under the simulator: {offending}"


# DESIGN.md section 2: observability is imported only by the shell. The dashboard (served by a
# node's API) counts as the shell too: it shows the node's alerts and metrics.
OBSERVABILITY_USERS = ("runtime", "api", "cli", "dashboard", "observability")


def observability_violations(path: Path, layer: str) -> list[tuple[str, int]]:
    """Imports of `conclave.observability` by a file of `layer` that may not import it."""
    if layer in OBSERVABILITY_USERS:
        return []
    return [
        (site.imported, site.line)
        for site in _imports(path)
        if site.imported.startswith("conclave.observability")
    ]


def test_only_the_shell_imports_observability() -> None:
    offending = [
        (_module_name(path), found)
        for path in _python_files()
        if (found := observability_violations(path, _layer(_module_name(path))))
    ]
    assert not offending, f"pure packages and the simulator emit trace events: {offending}"


def test_the_observability_rule_catches_a_planted_import(tmp_path: Path) -> None:
    planted = tmp_path / "bad.py"
    planted.write_text("from conclave.observability import NodeMetrics\n")
    for layer in ("core", "decision", "sim", "storage", "client"):
        assert observability_violations(planted, layer), layer
    assert not observability_violations(planted, "runtime")
