"""``twin report --out DIR``: one run as an offline HTML page with PNG figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import settings_from_args
from streams.cli.query_cmd import add_database_flags, add_run_flag, requested_run

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write an offline HTML report of a run (PNG plots: MFU, waste, stragglers, leases)",
        description=(
            "Write DIR/index.html and its PNG figures for one run: MFU by generation over "
            "time, the waste ledger (stacked), top straggler racks, lease economics, and the "
            "summary numbers and tables from the named queries. The page needs no network."
        ),
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder to write index.html and the PNG files into",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=15,
        metavar="N",
        help="straggler racks and jobs to show (default 15)",
    )
    group = add_database_flags(parser)
    add_run_flag(group, text="the run to report (default: the newest run in the file)")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.analysis import AnalysisError, read_only, resolve_run
    from streams.queries import QueryError
    from streams.report import write_report

    if args.top < 1:
        raise CliError("--top must be at least 1")
    settings = settings_from_args(args)
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: exists and is not a folder")
    try:
        with read_only(settings.duckdb_path) as con:
            run = resolve_run(con, requested_run(args))
            report = write_report(con, run, out, top=args.top)
    except (AnalysisError, QueryError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write the report into {out}: {exc.strerror or exc}") from None
    print(f"report of run {run}: {report.index} ({len(report.figures)} figures)")
    return 0
