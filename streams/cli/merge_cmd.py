"""``twin merge``: land the ticks of a scaled-out run (workers started with ``--partial``)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import add_kafka_flags, add_setting_flags, settings_from_args

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "merge",
        help="scale-out: merge the --partial workers' per-tick aggregates into DuckDB",
        description=(
            "Read twin.partials, the per-tick aggregates that workers started with --partial "
            "publish for the racks they own; once a tick's partials cover every facility.gpu "
            "partition, sum them (the facility meter's overhead counted once), land the tick in "
            "DuckDB (the tables a single worker writes) and publish it to twin.kpis. Reads the "
            "topic from its start; ticks already in the DuckDB file are skipped. Stops on "
            "Ctrl-C, or with --idle-exit. See docs/SCALE-OUT.md."
        ),
    )
    add_kafka_flags(parser)
    group = parser.add_argument_group("twin")
    add_setting_flags(group, "run_id", "tick_s", "data_dir", "duckdb_path")
    group.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                       help="stop after this many seconds without a partial of the run")
    group.add_argument("--fresh", action="store_true",
                       help="forget the run's rows in the DuckDB file first")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from streams.broker import local_broker
    from streams.merge import run_merger
    from streams.topics import ensure_topics

    if args.idle_exit is not None and args.idle_exit <= 0:
        raise CliError("--idle-exit must be a positive number of seconds")
    settings = settings_from_args(args)
    with local_broker(settings) as bootstrap:
        ensure_topics(settings, bootstrap=bootstrap)
        print(f"twin merge: run {settings.run_id} -> {settings.duckdb_path}", file=sys.stderr,
              flush=True)
        merger = run_merger(
            settings, bootstrap, settings.duckdb_path, run_id=settings.run_id,
            tick_ns=round(settings.tick_s * 1e9), fresh=args.fresh, idle_exit_s=args.idle_exit,
        )
    print(describe(merger))
    return 0


def describe(merger: Any) -> str:
    """One line about a merge: ticks, workers and what was dropped."""
    s = merger.stats
    members = ", ".join(f"{m} {sorted(p)}" for m, p in sorted(s.members.items())) or "none"
    incomplete = merger.incomplete()
    return (
        f"twin merge: {s.merged} ticks merged from {len(s.members)} workers ({members}); "
        f"{s.duplicates} duplicate and {s.conflicts} overlapping partials dropped, "
        f"{len(incomplete)} ticks incomplete"
    )
