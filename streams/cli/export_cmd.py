"""``twin export``: a run's KPI, ledger, straggler and counter tables as partitioned Parquet."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import settings_from_args
from streams.cli.query_cmd import add_database_flags, add_run_flag, requested_run

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    from streams.export import EXPORT_TABLES

    parser = subparsers.add_parser(
        "export",
        help="write a run's tables as Parquet partitioned by day and scope",
        description=(
            "Export one run's rows of the kpi, ledger, stragglers and tick_counts tables to "
            "Parquet under OUT, Hive-partitioned by run_id, day (UTC date of the tick's end) "
            "and, for kpi, scope: e.g. OUT/kpi/run_id=small/day=2026-10-01/scope=rack/. "
            "Query it with DuckDB's read_parquet('OUT/kpi/**/*.parquet', "
            "hive_partitioning = true) or any lake engine. Exporting a run again replaces its "
            "files. Reads the DuckDB file read-only (once the worker has stopped)."
        ),
    )
    parser.add_argument("out", metavar="OUT", type=Path, help="output folder")
    parser.add_argument(
        "--tables", default=",".join(EXPORT_TABLES),
        help=f"comma-separated tables to export (default: {','.join(EXPORT_TABLES)})",
    )
    group = add_database_flags(parser)
    add_run_flag(group, text="the run to export (default: the newest run in the file)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.analysis import AnalysisError, read_only, resolve_run
    from streams.export import ExportError, export_run

    settings = settings_from_args(args)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    if not tables:
        raise CliError("--tables names no table")
    try:
        with read_only(settings.duckdb_path) as con:
            run_id = resolve_run(con, requested_run(args))
            done = export_run(con, run_id, args.out, tables)
    except (AnalysisError, ExportError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write {args.out}: {exc}") from None
    for d in done:
        files = "file" if d.files == 1 else "files"
        print(f"{d.table}: {d.rows:,} rows in {d.files} {files} under {d.path}")
    return 0
