"""Helpers of the analyst tests: the runs the session fixture made, named-query rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from streams.queries import load_query, run_query

__all__ = ["AnalystRuns", "rows", "scalar"]


@dataclass(frozen=True)
class AnalystRuns:
    db: Path
    env: dict[str, str]  # TWIN_* environment pointing at the file (for child processes)
    summaries: dict[str, dict[str, Any]]  # run id -> `twin run --json` summary
    mixed: str = "small"
    leased: str = "small-leased"


def rows(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    """A named query's rows as dicts (parameters bound by the loader, defaults filled)."""
    cols, data = run_query(con, load_query(name), params)
    return [dict(zip(cols, r, strict=True)) for r in data]


def scalar(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> Any:
    row = con.execute(sql, list(params)).fetchone()
    assert row is not None
    return row[0]
