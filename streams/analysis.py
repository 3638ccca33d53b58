"""Analysts' access to the twin's DuckDB file: read-only connections with clear messages, and
the runs it holds (``twin query``, ``twin sql``, ``twin report``, ``twin compare``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from streams.writer import connect_read_only

__all__ = ["AnalysisError", "known_runs", "open_database", "read_only", "resolve_run"]


class AnalysisError(Exception):
    """The database cannot be read, or a run is not in it; the message says why."""


_LOCK = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def open_database(path: Path | str) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the twin's DuckDB file, or an :class:`AnalysisError` that says
    what is wrong: no file yet, another process writing it, not a DuckDB file."""
    try:
        return connect_read_only(path)
    except FileNotFoundError as exc:
        raise AnalysisError(
            f"{exc}; or point --duckdb-path / TWIN_DUCKDB_PATH at the twin's file"
        ) from None
    except duckdb.IOException as exc:
        text = str(exc)
        lock = _LOCK.search(text)
        if lock or "lock" in text.lower():
            holder = f" (PID {lock.group(2)}, {lock.group(1)})" if lock else ""
            raise AnalysisError(
                f"the DuckDB file {path} is open for writing by another process{holder}, "
                "probably a running `twin worker` or `twin run`: DuckDB lets one process write "
                "a file and nobody else read it meanwhile. Query it when that process has "
                "stopped, or query a copy of the file"
            ) from None
        raise AnalysisError(f"cannot open {path}: {text.splitlines()[0]}") from None
    except duckdb.Error as exc:
        raise AnalysisError(f"cannot open {path}: {str(exc).splitlines()[0]}") from None


@contextmanager
def read_only(path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """:func:`open_database`, closed at the end of the block."""
    con = open_database(path)
    try:
        yield con
    finally:
        con.close()


def known_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The runs in the file, newest first (registered runs, then any with KPI rows only)."""
    try:
        rows = con.execute(
            "SELECT run_id FROM ("
            "  SELECT run_id, started_at FROM runs"
            "  UNION ALL"
            "  SELECT DISTINCT run_id, NULL FROM kpi WHERE run_id NOT IN (SELECT run_id FROM runs)"
            ") ORDER BY started_at DESC NULLS LAST, run_id"
        ).fetchall()
    except duckdb.CatalogException:
        raise AnalysisError(
            "this DuckDB file has no twin tables (runs, kpi): is it the twin's file?"
        ) from None
    return [str(r[0]) for r in rows]


def resolve_run(con: duckdb.DuckDBPyConnection, requested: str | None) -> str:
    """``requested`` if the file holds it; with none, the newest run. Else an error naming the
    runs there are."""
    runs = known_runs(con)
    if not runs:
        raise AnalysisError("no run in this DuckDB file yet: run the twin first (twin run)")
    if requested is None:
        return runs[0]
    if requested not in runs:
        raise AnalysisError(
            f"no run named {requested!r} in this file; runs: {', '.join(runs)} "
            "(choose with --run or TWIN_RUN_ID)"
        )
    return requested
