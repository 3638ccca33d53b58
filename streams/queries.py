"""Named SQL queries: one file each in ``queries/``, a header comment, bound parameters.

A query file starts with comment lines::

    -- NAME: what it answers ...
    -- params: run_id (text), top (integer, default 10 in `twin query`)

Parameters are DuckDB named parameters (``$run_id``) bound at execution, never pasted into SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

__all__ = ["QUERY_DIR", "NamedQuery", "QueryError", "list_queries", "load_query", "run_query"]

QUERY_DIR = Path(__file__).resolve().parent.parent / "queries"
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class QueryError(ValueError):
    """A bad query name or parameter; the message says what is known."""


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    description: str
    params: tuple[str, ...]
    sql: str


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
    params = tuple(dict.fromkeys(_PARAM.findall(sql)))
    return NamedQuery(name, description, params, sql)


def list_queries(directory: Path = QUERY_DIR) -> list[NamedQuery]:
    return [load_query(p.stem, directory) for p in sorted(directory.glob("*.sql"))]


def run_query(
    con: duckdb.DuckDBPyConnection, query: NamedQuery, params: dict[str, Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Execute with bound parameters; a missing or unknown parameter is a :class:`QueryError`."""
    missing = [p for p in query.params if p not in params]
    if missing:
        raise QueryError(
            f"query {query.name} needs --param {missing[0]}=VALUE (its parameters: "
            f"{', '.join(query.params)})"
        )
    unknown = [p for p in params if p not in query.params]
    if unknown:
        raise QueryError(
            f"query {query.name} has no parameter {unknown[0]!r} (its parameters: "
            f"{', '.join(query.params) or 'none'})"
        )
    try:
        cur = con.execute(query.sql, params)
    except duckdb.Error as exc:
        raise QueryError(f"query {query.name}: {exc}") from None
    columns = [d[0] for d in cur.description or ()]
    return columns, cur.fetchall()
