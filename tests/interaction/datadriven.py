"""A small data-driven test runner in the style of etcd's `datadriven` package.

A script is a sequence of cases:

    command arg1 key=value key=(a,b)
    ----
    expected output, any number of lines

Cases are separated by blank lines after the expected output. Lines starting with `#` before a
command are comments and are kept on rewrite. Run with `CONCLAVE_REWRITE=1` to rewrite every
script's expected output with what the harness printed (then review the diff).
"""

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SEPARATOR = "----"


@dataclass
class Command:
    """One parsed command line: a name, positional args and key=value args."""

    name: str
    positional: list[str] = field(default_factory=list)
    keyword: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def arg_int(self, key: str, default: int | None = None) -> int:
        if key in self.keyword:
            return int(self.keyword[key])
        if default is None:
            raise KeyError(f"line {self.line}: {self.name} needs {key}=")
        return default

    def arg_ints(self, key: str) -> tuple[int, ...]:
        raw = self.keyword.get(key, "").strip("()")
        return tuple(int(part) for part in raw.split(",") if part)

    def arg_bool(self, key: str, default: bool) -> bool:
        if key not in self.keyword:
            return default
        return self.keyword[key].lower() in ("1", "true", "yes", "on")


@dataclass
class Case:
    comments: list[str]
    command_text: str
    expected: str
    line: int


def parse_command(text: str, line: int) -> Command:
    tokens = shlex.split(text)
    command = Command(name=tokens[0], line=line)
    for token in tokens[1:]:
        if "=" in token:
            key, value = token.split("=", 1)
            command.keyword[key] = value
        else:
            command.positional.append(token)
    return command


def parse_script(text: str) -> list[Case]:
    lines = text.splitlines()
    cases: list[Case] = []
    i = 0
    while i < len(lines):
        comments: list[str] = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
            if lines[i].startswith("#"):
                comments.append(lines[i])
            i += 1
        if i >= len(lines):
            break
        command_line, start = lines[i], i + 1
        i += 1
        if i >= len(lines) or lines[i] != SEPARATOR:
            raise ValueError(f"line {start}: expected '{SEPARATOR}' after the command")
        i += 1
        expected: list[str] = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        cases.append(Case(comments, command_line, "\n".join(expected), start))
    return cases


def render_script(cases: list[Case], outputs: list[str]) -> str:
    chunks = []
    for case, output in zip(cases, outputs, strict=True):
        body = "\n".join([*case.comments, case.command_text, SEPARATOR, output or "ok"])
        chunks.append(body)
    return "\n\n".join(chunks) + "\n"


def run_script(path: Path, execute: Callable[[Command], str]) -> None:
    """Run every case of `path` through `execute`; assert or rewrite the expected output."""
    cases = parse_script(path.read_text())
    outputs = []
    mismatches = []
    for case in cases:
        output = execute(parse_command(case.command_text, case.line)).rstrip("\n") or "ok"
        outputs.append(output)
        if output != case.expected:
            mismatches.append(
                f"{path.name}:{case.line}: {case.command_text}\n"
                f"--- expected\n{case.expected}\n--- got\n{output}"
            )
    if os.environ.get("CONCLAVE_REWRITE"):
        path.write_text(render_script(cases, outputs))
        return
    assert not mismatches, "\n\n".join(mismatches)
