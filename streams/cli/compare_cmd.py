"""``twin compare RUN_A RUN_B``: two runs' KPIs side by side with difference and ratio."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import settings_from_args
from streams.cli.query_cmd import add_database_flags, add_format_flag

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="two runs side by side: MFU, power, energy, waste by cause, tenants, difference",
        description=(
            "Put the KPIs of two runs in the twin's DuckDB file side by side (facility MFU, "
            "power, energy, recoverable energy, waste by cause, MFU per generation, single- vs "
            "cross-campus jobs, tenant economics) with the difference (B - A) and the ratio "
            "(B / A). Runs are named by run_id, which `twin run` sets to the scenario name, "
            "e.g. twin compare colossus1-mixed colossus1-homogeneous."
        ),
    )
    parser.add_argument("run_a", metavar="RUN_A", help="the baseline run")
    parser.add_argument("run_b", metavar="RUN_B", help="the run compared with it")
    add_format_flag(parser)
    add_database_flags(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.analysis import AnalysisError, read_only, resolve_run
    from streams.compare import compare_runs, compare_table
    from streams.output import render
    from streams.queries import QueryError

    settings = settings_from_args(args)
    try:
        with read_only(settings.duckdb_path) as con:
            run_a = resolve_run(con, args.run_a)
            run_b = resolve_run(con, args.run_b)
            rows = compare_runs(con, run_a, run_b)
    except (AnalysisError, QueryError) as exc:
        raise CliError(str(exc)) from None
    columns, data = compare_table(rows, run_a, run_b)
    title = f"{run_b} (B) against {run_a} (A)"
    sys.stdout.write(render(args.format, columns, data, title=title))
    return 0
