"""Parquet export of a run's tables, partitioned by day (and scope), for DuckDB or any lake
engine: ``twin export``.

Layout under the output folder (Hive partitioning, so ``read_parquet('out/kpi/**/*.parquet',
hive_partitioning = true)`` gives the columns back plus ``day`` and ``scope``)::

    kpi/run_id=<run>/day=2026-10-01/scope=rack/data_0.parquet
    ledger/run_id=<run>/day=2026-10-01/data_0.parquet
    stragglers/run_id=<run>/day=.../data_0.parquet
    tick_counts/run_id=<run>/day=.../data_0.parquet

``day`` is the UTC date of the tick's end (event time). A run's partitions are replaced when it
is exported again; other runs' files in the folder are left alone.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

__all__ = ["EXPORT_TABLES", "ExportError", "TableExport", "export_run"]

#: table -> partition columns after run_id and day
EXPORT_TABLES: dict[str, tuple[str, ...]] = {
    "kpi": ("scope",),
    "ledger": (),
    "stragglers": (),
    "tick_counts": (),
}


class ExportError(Exception):
    """The export cannot be done (unknown table, no rows for the run)."""


@dataclass(frozen=True, slots=True)
class TableExport:
    table: str
    rows: int
    files: int
    path: Path


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    out_dir: Path,
    tables: Sequence[str] = tuple(EXPORT_TABLES),
) -> list[TableExport]:
    """Write ``run_id``'s rows of ``tables`` under ``out_dir`` (see the module docstring)."""
    unknown = [t for t in tables if t not in EXPORT_TABLES]
    if unknown:
        raise ExportError(f"cannot export {', '.join(unknown)}: tables are "
                          f"{', '.join(EXPORT_TABLES)}")
    done = []
    for table in tables:
        n = con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()
        rows = int(n[0]) if n else 0
        target = out_dir / table
        run_part = target / f"run_id={run_id}"
        if run_part.exists():
            shutil.rmtree(run_part)  # a re-export replaces the run's files
        if rows == 0:
            done.append(TableExport(table, 0, 0, target))
            continue
        target.mkdir(parents=True, exist_ok=True)
        parts = ", ".join(("run_id", "day", *EXPORT_TABLES[table]))
        con.execute(
            f"COPY (SELECT *, strftime(make_timestamp(tick_end_ns // 1000), '%Y-%m-%d') AS day "
            f"FROM {table} WHERE run_id = {_quote(run_id)}) TO {_quote(str(target))} "
            f"(FORMAT parquet, PARTITION_BY ({parts}), OVERWRITE_OR_IGNORE)"
        )
        files = sum(1 for _ in run_part.rglob("*.parquet"))
        done.append(TableExport(table, rows, files, target))
    if not any(d.rows for d in done):
        raise ExportError(f"run {run_id!r} has no rows in {', '.join(tables)}")
    return done
