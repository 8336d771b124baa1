"""Deterministic conflict detection between proposals (pure: no I/O, no clock, no randomness).

Rules:
- `detect(candidate, others, ...)` reports the conflicts that involve `candidate`; conflicts
  among `others` alone are not its business. `others` are the proposals still open or approved
  but not executed (the state machine decides which); an entry with the candidate's own id is
  ignored, duplicates of one id must be equal (a broken local invariant otherwise).
- The result is a tuple sorted by conflict id, and every part of a conflict (id, sorted
  proposal ids, reason) is a function of the inputs only, never of the order of `others`,
  of set iteration or of `hash()`: every replica names the same conflict the same way.
- Conflict id: `"<type>:<sorted ids joined by '+'>"`, e.g. `"resource:p1+p7"` (ids assigned by
  the state machine carry no '+').
- RESOURCE, per pair: a key both write is HIGH; otherwise a key one reads and the other writes
  is MEDIUM (the reader may decide on a value the writer replaces). One conflict per pair; the
  reason names the write/write keys, then the read/write keys.
- TEMPORAL, per pair: both have windows, the windows overlap and the scopes (reads or writes)
  share a key: MEDIUM. Only the stronger conflict is reported: when the pair already has a
  RESOURCE conflict, the overlap is mentioned in that conflict's reason and no TEMPORAL
  conflict is added, so resolving the pair once resolves it (TEMPORAL thus only appears when
  the shared keys are read by both and written by neither).
- POLICY, per candidate (`"policy:<id>"`, HIGH): a rule (data, see `PolicyRule`) that the
  candidate's changes applied to `state` would break. A rule is broken *by the candidate* only
  through the candidate's own writes: a value rule checks the values the candidate writes
  (deletes never break one), `MaxKeys` fires only when the count is over the limit and the
  candidate increased it. A state that was already out of bounds is not blamed on a proposal.
- DEPENDENCY, HIGH: `"dependency:<id>"` when the candidate depends on itself, on a proposal in
  `failed` (rejected, expired, conflict-lost) or on an id that is neither open (`others`),
  failed nor `executed`; `"dependency:<sorted cycle ids>"` when the candidate is on a
  dependency cycle of two or more proposals (the shortest one found by a breadth-first search
  in sorted id order). `find_dependency_cycle` finds any cycle in a set of proposals.
- Reasons are one line: keys and ids are quoted as JSON strings, long key lists are cut at
  `REASON_ITEMS_MAX` with a count of the rest (DESIGN.md section 3: everything is bounded).
"""

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeGuard

from conclave.decision.model import Conflict, ConflictType, Proposal, Severity

REASON_ITEMS_MAX: Final = 8
SCHEMA_DEPTH_MAX: Final = 16

_NO_STATE: Final[Mapping[str, str]] = MappingProxyType({})
_NO_FAILED: Final[Mapping[str, str]] = MappingProxyType({})

JSON_TYPES: Final = ("array", "boolean", "integer", "null", "number", "object", "string")
SCHEMA_KEYWORDS: Final = (
    "enum",
    "maxLength",
    "maximum",
    "minimum",
    "properties",
    "required",
    "type",
)


# ----------------------------------------------------------------------------- text helpers


def _quote(text: str) -> str:
    # JSON quoting escapes newlines and control characters: a reason stays on one line.
    return json.dumps(text, ensure_ascii=False)


def _quote_all(items: Sequence[str]) -> str:
    shown = ", ".join(_quote(item) for item in items[:REASON_ITEMS_MAX])
    rest = len(items) - REASON_ITEMS_MAX
    return f"{shown} and {rest} more" if rest > 0 else shown


def conflict_id(kind: ConflictType, proposal_ids: Iterable[str]) -> str:
    """The deterministic id of a conflict: type and sorted proposal ids."""
    return f"{kind.value}:{'+'.join(sorted(proposal_ids))}"


def _conflict(kind: ConflictType, severity: Severity, ids: Iterable[str], reason: str) -> Conflict:
    proposals = tuple(sorted(ids))
    return Conflict(
        id=conflict_id(kind, proposals),
        type=kind,
        severity=severity,
        proposals=proposals,
        reason=reason,
    )


# ----------------------------------------------------------------------------- state helpers


def apply_changes(
    state: Mapping[str, str], changes: Iterable[tuple[str, str | None]]
) -> dict[str, str]:
    """A new state: `state` with `changes` applied in order (None deletes the key)."""
    after = dict(state)
    for key, value in changes:
        if value is None:
            after.pop(key, None)
        else:
            after[key] = value
    return after


def _changed_keys(changes: Iterable[tuple[str, str | None]]) -> tuple[str, ...]:
    return tuple(sorted({key for key, _ in changes}))


# ----------------------------------------------------------------------------- JSON subset


class _JsonError(ValueError):
    """A text that is not the strict JSON this module accepts."""


def _reject_constant(name: str) -> object:
    raise _JsonError(f"non-standard JSON constant {name}")


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Python keeps the last duplicate silently; an ambiguous object is refused instead.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonError(f"duplicate key {_quote(key)}")
        result[key] = value
    return result


def parse_json(text: str) -> object:
    """Strict JSON: no NaN/Infinity, no duplicate keys. Raises ValueError."""
    try:
        parsed: object = json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_unique_pairs
        )
    except RecursionError as exc:  # absurd nesting is an invalid value, not a crash
        raise _JsonError("too deeply nested") from exc
    except ValueError as exc:  # JSONDecodeError and the int digit limit are ValueErrors
        raise _JsonError(str(exc).splitlines()[0]) from exc
    return parsed


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_type_matches(value: object, name: str) -> bool:
    if name == "integer":
        # JSON Schema: 1.0 is an integer; bool is never a number in JSON.
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    checks: dict[str, bool] = {
        "array": isinstance(value, list),
        "boolean": isinstance(value, bool),
        "null": value is None,
        "number": _is_number(value),
        "object": isinstance(value, dict),
        "string": isinstance(value, str),
    }
    return checks[name]


def _json_equal(a: object, b: object) -> bool:
    """JSON equality: 1 == 1.0, but true != 1 (Python's bool is an int; JSON's is not)."""
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return sorted(a) == sorted(b) and all(_json_equal(a[k], b[k]) for k in sorted(a))
    return False


def _check_schema(schema: object, path: str, depth: int) -> None:
    """Refuse a schema outside the supported subset, so a typo is an error, not a no-op."""
    if depth > SCHEMA_DEPTH_MAX:
        raise ValueError(f"schema at {path} is nested deeper than {SCHEMA_DEPTH_MAX}")
    if not isinstance(schema, dict):
        raise ValueError(f"schema at {path} must be a JSON object")
    for keyword in sorted(schema):
        if keyword not in SCHEMA_KEYWORDS:
            raise ValueError(f"schema at {path}: unsupported keyword {_quote(keyword)}")
    if "type" in schema and schema["type"] not in JSON_TYPES:
        raise ValueError(f"schema at {path}: type must be one of {', '.join(JSON_TYPES)}")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise ValueError(f"schema at {path}: enum must be an array")
    for bound in ("minimum", "maximum"):
        if bound in schema and not _is_number(schema[bound]):
            raise ValueError(f"schema at {path}: {bound} must be a number")
    if "maxLength" in schema:
        limit = schema["maxLength"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ValueError(f"schema at {path}: maxLength must be a non-negative integer")
    if "required" in schema:
        required = schema["required"]
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            raise ValueError(f"schema at {path}: required must be an array of strings")
    if "properties" in schema:
        properties = schema["properties"]
        if not isinstance(properties, dict):
            raise ValueError(f"schema at {path}: properties must be an object")
        for name in sorted(properties):
            _check_schema(properties[name], f"{path}.{name}", depth + 1)


def _schema_errors(schema: dict[str, object], value: object, path: str) -> list[str]:
    """Violations of the (already checked) schema by `value`, in a fixed keyword order."""
    kind = schema.get("type")
    if isinstance(kind, str) and not _json_type_matches(value, kind):
        return [f"{path}: expected {kind}"]  # the other keywords assume the right type
    errors: list[str] = []
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(_json_equal(value, option) for option in enum):
        errors.append(f"{path}: not one of the allowed values")
    if _is_number(value):
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, int | float) and value < low:
            errors.append(f"{path}: below minimum {low}")
        if isinstance(high, int | float) and value > high:
            errors.append(f"{path}: above maximum {high}")
    length_max = schema.get("maxLength")
    # JSON Schema counts characters (code points), not bytes; see ValueLengthMax for bytes.
    if isinstance(value, str) and isinstance(length_max, int) and len(value) > length_max:
        errors.append(f"{path}: longer than {length_max} characters")
    if isinstance(value, dict):
        required = schema.get("required")
        if isinstance(required, list):
            for name in sorted(str(n) for n in required):
                if name not in value:
                    errors.append(f"{path}: missing required {_quote(name)}")
        properties = schema.get("properties")
        if isinstance(properties, dict):
            for name in sorted(properties):
                sub = properties[name]
                if name in value and isinstance(sub, dict):
                    errors += _schema_errors(sub, value[name], f"{path}.{name}")
    return errors


# ----------------------------------------------------------------------------- policy rules


def _under(key: str, prefix: str) -> bool:
    return key.startswith(prefix)


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChange:
    """What a rule sees: the state before and after the candidate's changes, and the keys
    the candidate changed (sorted)."""

    before: Mapping[str, str]
    after: Mapping[str, str]
    changed: tuple[str, ...]

    def written(self, prefix: str) -> list[tuple[str, str]]:
        """The (key, final value) pairs written under `prefix`; deletes are not writes."""
        return [(k, self.after[k]) for k in self.changed if _under(k, prefix) and k in self.after]


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxKeys:
    """At most `count_max` keys start with `prefix` ("" = all keys)."""

    prefix: str
    count_max: int

    def __post_init__(self) -> None:
        if isinstance(self.count_max, bool) or not isinstance(self.count_max, int):
            raise ValueError("count_max must be an integer")
        if self.count_max < 0:
            raise ValueError("count_max must be >= 0")

    def describe(self) -> str:
        return f"max-keys({_quote(self.prefix)}, {self.count_max})"

    def violations(self, change: StateChange) -> list[str]:
        count_before = sum(1 for key in change.before if _under(key, self.prefix))
        count_after = sum(1 for key in change.after if _under(key, self.prefix))
        # Only growth over the limit is the candidate's doing; shrinking never breaks it.
        if count_after > self.count_max and count_after > count_before:
            return [f"{count_after} keys"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowedValues:
    """Every value written under `key_prefix` is one of `values`."""

    key_prefix: str
    values: tuple[str, ...]

    def describe(self) -> str:
        return f"allowed-values({_quote(self.key_prefix)})"

    def violations(self, change: StateChange) -> list[str]:
        return [
            f"{_quote(key)} = {_quote(value)} not allowed"
            for key, value in change.written(self.key_prefix)
            if value not in self.values
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueLengthMax:
    """Every value written under `prefix` is at most `bytes_max` bytes of UTF-8."""

    prefix: str
    bytes_max: int

    def __post_init__(self) -> None:
        if isinstance(self.bytes_max, bool) or not isinstance(self.bytes_max, int):
            raise ValueError("bytes_max must be an integer")
        if self.bytes_max < 0:
            raise ValueError("bytes_max must be >= 0")

    def describe(self) -> str:
        return f"value-length-max({_quote(self.prefix)}, {self.bytes_max})"

    def violations(self, change: StateChange) -> list[str]:
        problems = []
        for key, value in change.written(self.prefix):
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > self.bytes_max:
                problems.append(f"{_quote(key)} is {size} bytes")
        return problems


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonSchemaRule:
    """Every value written under `key_prefix` is JSON valid against `schema` (JSON text).

    The schema language is a small subset of JSON Schema, checked at construction:
    `type` (one name of `JSON_TYPES`), `enum`, `minimum` / `maximum` (inclusive),
    `maxLength` (characters), `required` and `properties` (objects; nested schemas).
    Anything else is refused, so a misspelt keyword cannot silently allow everything.
    A value that is not strict JSON (see `parse_json`) breaks the rule.
    """

    key_prefix: str
    schema: str
    _parsed: dict[str, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parsed = parse_json(self.schema)
        _check_schema(parsed, "$", 0)
        assert isinstance(parsed, dict)  # _check_schema refused anything else
        # A frozen dataclass sets its own cache once, at construction.
        object.__setattr__(self, "_parsed", parsed)

    def describe(self) -> str:
        return f"json-schema({_quote(self.key_prefix)})"

    def violations(self, change: StateChange) -> list[str]:
        problems = []
        for key, text in change.written(self.key_prefix):
            try:
                value = parse_json(text)
            except ValueError as exc:
                problems.append(f"{_quote(key)} is not JSON ({exc})")
                continue
            problems += [f"{_quote(key)} {e}" for e in _schema_errors(self._parsed, value, "$")]
        return problems


PolicyRule = MaxKeys | AllowedValues | ValueLengthMax | JsonSchemaRule


def policy_violations(
    candidate: Proposal, rules: Sequence[PolicyRule], state: Mapping[str, str]
) -> list[str]:
    """One line per (rule, problem) the candidate's changes would cause, in rule order."""
    change = StateChange(
        before=state,
        after=apply_changes(state, candidate.changes),
        changed=_changed_keys(candidate.changes),
    )
    problems: list[str] = []
    for rule in rules:
        problems += [f"{rule.describe()}: {p}" for p in rule.violations(change)]
    return problems


# ----------------------------------------------------------------------------- pair conflicts


def _shared(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """Sorted keys in both: iterate the sorted tuple, test membership in a set."""
    b_set = frozenset(b)
    return sorted({key for key in a if key in b_set})


def _resource(a: Proposal, b: Proposal) -> Conflict | None:
    write_write = _shared(a.scope.writes, b.scope.writes)
    read_write = sorted(
        {*_shared(a.scope.reads, b.scope.writes), *_shared(a.scope.writes, b.scope.reads)}
        - set(write_write)
    )
    if not write_write and not read_write:
        return None
    parts = []
    if write_write:
        parts.append(f"both write {_quote_all(write_write)}")
    if read_write:
        parts.append(f"read/write overlap on {_quote_all(read_write)}")
    if _windows_overlap(a, b):
        parts.append("windows also overlap")
    severity = Severity.HIGH if write_write else Severity.MEDIUM
    return _conflict(ConflictType.RESOURCE, severity, (a.id, b.id), "; ".join(parts))


def _windows_overlap(a: Proposal, b: Proposal) -> bool:
    return a.window is not None and b.window is not None and a.window.overlaps(b.window)


def _temporal(a: Proposal, b: Proposal) -> Conflict | None:
    if not _windows_overlap(a, b):
        return None
    shared = _shared((*a.scope.reads, *a.scope.writes), (*b.scope.reads, *b.scope.writes))
    if not shared:
        return None
    reason = f"windows overlap on {_quote_all(shared)}"
    return _conflict(ConflictType.TEMPORAL, Severity.MEDIUM, (a.id, b.id), reason)


def _pair_conflicts(a: Proposal, b: Proposal) -> list[Conflict]:
    resource = _resource(a, b)
    if resource is not None:
        return [resource]  # the stronger conflict subsumes TEMPORAL for this pair
    temporal = _temporal(a, b)
    return [temporal] if temporal is not None else []


# ----------------------------------------------------------------------------- dependencies


def _dependency_problems(
    candidate: Proposal,
    open_ids: Collection[str],
    failed: Mapping[str, str],
    executed: Collection[str],
) -> list[str]:
    problems = []
    for dep in sorted(set(candidate.depends_on)):
        if dep == candidate.id:
            problems.append("depends on itself")
        elif dep in failed:
            problems.append(f"depends on {_quote(dep)} which failed: {_quote(failed[dep])}")
        elif dep not in open_ids and dep not in executed:
            problems.append(f"depends on unknown {_quote(dep)}")
    return problems


def _dependency_graph(proposals: Iterable[Proposal]) -> dict[str, tuple[str, ...]]:
    """id -> sorted dependencies that are themselves in the set."""
    by_id = {p.id: p for p in proposals}
    return {
        pid: tuple(sorted({d for d in by_id[pid].depends_on if d in by_id}))
        for pid in sorted(by_id)
    }


def _canonical_cycle(cycle: Sequence[str]) -> tuple[str, ...]:
    """Rotate a cycle so that it starts at its smallest id (same cycle, same text)."""
    start = cycle.index(min(cycle))
    return (*cycle[start:], *cycle[:start])


def find_dependency_cycle(proposals: Iterable[Proposal]) -> tuple[str, ...] | None:
    """A dependency cycle among `proposals` (ids in dependency order, starting at the
    smallest), or None. A self-dependency is a cycle of one. Deterministic: a depth-first
    search in sorted id order; iterative, so a long chain cannot exhaust the stack."""
    graph = _dependency_graph(proposals)
    done: set[str] = set()
    for root in graph:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        cursors = [0]  # next dependency to explore, per path position
        while path:
            node, cursor = path[-1], cursors[-1]
            deps = graph[node]
            if cursor == len(deps):
                done.add(node)
                on_path.discard(node)
                path.pop()
                cursors.pop()
                continue
            cursors[-1] += 1
            dep = deps[cursor]
            if dep in on_path:
                return _canonical_cycle(path[path.index(dep) :])
            if dep not in done:
                path.append(dep)
                on_path.add(dep)
                cursors.append(0)
    return None


def _cycle_through(candidate: Proposal, others: Iterable[Proposal]) -> tuple[str, ...] | None:
    """The shortest cycle of two or more proposals through `candidate` (breadth-first,
    sorted neighbours, so ties break the same way everywhere), or None."""
    graph = _dependency_graph((candidate, *others))
    parent: dict[str, str] = {}
    frontier = [d for d in graph[candidate.id] if d != candidate.id]
    for dep in frontier:
        parent[dep] = candidate.id
    while frontier:
        next_frontier: list[str] = []
        for node in frontier:
            for dep in graph[node]:
                if dep == candidate.id:
                    cycle = [node]
                    while cycle[-1] != candidate.id:
                        cycle.append(parent[cycle[-1]])
                    return _canonical_cycle(cycle[::-1])
                if dep not in parent:
                    parent[dep] = node
                    next_frontier.append(dep)
        frontier = next_frontier
    return None


# ----------------------------------------------------------------------------- detect


def _unique_others(candidate: Proposal, others: Sequence[Proposal]) -> list[Proposal]:
    by_id: dict[str, Proposal] = {}
    for other in others:
        if other.id == candidate.id:
            continue  # callers may pass the whole open set, candidate included
        seen = by_id.get(other.id)
        if seen is not None and seen != other:
            raise ValueError(f"two different proposals share the id {_quote(other.id)}")
        by_id[other.id] = other
    return [by_id[pid] for pid in sorted(by_id)]


def detect(
    candidate: Proposal,
    others: Sequence[Proposal],
    *,
    rules: Sequence[PolicyRule] = (),
    state: Mapping[str, str] = _NO_STATE,
    failed: Mapping[str, str] = _NO_FAILED,
    executed: Collection[str] = frozenset(),
) -> tuple[Conflict, ...]:
    """All conflicts involving `candidate`, sorted by id (see the module rules).

    `executed` holds ids of proposals already executed: depending on one is satisfied.
    """
    peers = _unique_others(candidate, others)
    found: list[Conflict] = []
    for other in peers:
        found += _pair_conflicts(candidate, other)
    violations = policy_violations(candidate, rules, state)
    if violations:
        reason = f"{_quote(candidate.id)} breaks {_quote_all(violations)}"
        found.append(_conflict(ConflictType.POLICY, Severity.HIGH, (candidate.id,), reason))
    open_ids = frozenset(p.id for p in peers)
    dep_problems = _dependency_problems(candidate, open_ids, failed, executed)
    if dep_problems:
        reason = f"{_quote(candidate.id)} {'; '.join(dep_problems[:REASON_ITEMS_MAX])}"
        found.append(_conflict(ConflictType.DEPENDENCY, Severity.HIGH, (candidate.id,), reason))
    cycle = _cycle_through(candidate, peers)
    if cycle is not None:
        reason = "dependency cycle " + " -> ".join(_quote(i) for i in (*cycle, cycle[0]))
        found.append(_conflict(ConflictType.DEPENDENCY, Severity.HIGH, cycle, reason))
    return tuple(sorted(found, key=lambda c: c.id))


__all__ = [
    "REASON_ITEMS_MAX",
    "SCHEMA_DEPTH_MAX",
    "AllowedValues",
    "JsonSchemaRule",
    "MaxKeys",
    "PolicyRule",
    "StateChange",
    "ValueLengthMax",
    "apply_changes",
    "conflict_id",
    "detect",
    "find_dependency_cycle",
    "parse_json",
    "policy_violations",
]
