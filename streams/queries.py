"""Named SQL queries: one file each in ``queries/``, a header comment, bound parameters.

A query file starts with comment lines::

    -- NAME: what it answers ...
    -- (more lines of description, optional)
    -- params: run_id (text), top (integer, default 10)

Parameters are DuckDB named parameters (``$run_id``) bound at execution, never pasted into SQL.
The ``params:`` line declares each one's type (``text``, ``integer`` or ``number``) and, if it
has one, its default; :func:`bind_params` turns command-line strings into those types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

__all__ = [
    "QUERY_DIR",
    "NamedQuery",
    "QueryError",
    "bind_params",
    "cast_value",
    "list_queries",
    "load_query",
    "run_query",
]

QUERY_DIR = Path(__file__).resolve().parent.parent / "queries"
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SPEC = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(([^)]*)\)")
_DEFAULT = re.compile(r"\bdefault\s+('[^']*'|\"[^\"]*\"|[^\s,;]+)")
_TYPES = ("text", "integer", "number")


class QueryError(ValueError):
    """A bad query name or parameter; the message says what is known."""


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    description: str
    params: tuple[str, ...]
    sql: str
    #: declared type per parameter: "text", "integer" or "number" (absent: guessed from value)
    types: Mapping[str, str] = field(default_factory=dict)
    #: default per parameter, as it would be typed on the command line
    defaults: Mapping[str, str] = field(default_factory=dict)

    def signature(self) -> str:
        """``run_id (text), top (integer, default 10)``: what ``twin query --list`` shows."""
        parts = []
        for p in self.params:
            desc = self.types.get(p, "value")
            if p in self.defaults:
                desc += f", default {self.defaults[p]}"
            parts.append(f"{p} ({desc})")
        return ", ".join(parts) or "none"


def _param_specs(line: str) -> tuple[dict[str, str], dict[str, str], list[str]]:
    types: dict[str, str] = {}
    defaults: dict[str, str] = {}
    names: list[str] = []
    for name, desc in _SPEC.findall(line):
        names.append(name)
        words = desc.replace(",", " ").split()
        kind = next((w for w in words if w in _TYPES), None)
        if kind is not None:
            types[name] = kind
        default = _DEFAULT.search(desc)
        if default is not None:
            defaults[name] = default.group(1).strip().strip("'\"")
    return types, defaults, names


def load_query(name: str, directory: Path = QUERY_DIR) -> NamedQuery:
    path = directory / f"{name}.sql"
    if not re.fullmatch(r"[a-z0-9_]+", name) or not path.is_file():
        known = ", ".join(q.name for q in list_queries(directory))
        raise QueryError(f"no query named {name!r}; known queries: {known}")
    sql = path.read_text()
    header = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        header.append(line[2:].strip())
    first = header[0] if header else name
    description = first.split(":", 1)[1].strip() if ":" in first else first
    more = [h for h in header[1:] if not h.lower().startswith("params:")]
    if more:
        description = " ".join([description, *more])
    spec_line = " ".join(h[len("params:") :] for h in header if h.lower().startswith("params:"))
    types, defaults, declared = _param_specs(spec_line)
    used = dict.fromkeys(_PARAM.findall(sql))
    # in the order the header declares them, then any it does not declare
    params = tuple(dict.fromkeys([*(p for p in declared if p in used), *used]))
    return NamedQuery(name, description, params, sql, types, defaults)


def list_queries(directory: Path = QUERY_DIR) -> list[NamedQuery]:
    return [load_query(p.stem, directory) for p in sorted(directory.glob("*.sql"))]


def cast_value(text: str, kind: str | None = None) -> Any:
    """A command-line string as ``kind`` (``text``/``integer``/``number``); with no kind, an int
    if it reads as one, else a float, else the string."""
    if kind == "text":
        return text
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def bind_params(query: NamedQuery, given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters to bind: ``given`` (strings are cast to the declared types) plus the
    declared defaults. Unknown or missing parameters and values that do not cast are a
    :class:`QueryError`."""
    unknown = [p for p in given if p not in query.params]
    if unknown:
        raise QueryError(
            f"query {query.name} has no parameter {unknown[0]!r} (its parameters: "
            f"{query.signature()})"
        )
    out: dict[str, Any] = {}
    for p in query.params:
        if p in given:
            value = given[p]
        elif p in query.defaults:
            value = query.defaults[p]
        else:
            raise QueryError(
                f"query {query.name} needs --param {p}=VALUE (its parameters: {query.signature()})"
            )
        kind = query.types.get(p)
        if isinstance(value, str):
            try:
                value = cast_value(value, kind)
            except ValueError:
                article = "an" if kind == "integer" else "a"
                raise QueryError(
                    f"query {query.name}: parameter {p} must be {article} {kind}, got {value!r}"
                ) from None
        out[p] = value
    return out


def run_query(
    con: duckdb.DuckDBPyConnection, query: NamedQuery, params: Mapping[str, Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Execute with bound parameters (declared defaults fill the ones not given); a missing or
    unknown parameter is a :class:`QueryError`, and so is an error DuckDB raises."""
    bound = bind_params(query, params)
    try:
        cur = con.execute(query.sql, bound)
    except duckdb.Error as exc:
        raise QueryError(f"query {query.name}: {exc}") from None
    columns = [d[0] for d in cur.description or ()]
    return columns, cur.fetchall()
