"""``twin worker``: run one Faust worker that folds the facility topics into the twin."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import add_kafka_flags, add_setting_flags, settings_from_args
from streams.settings import Settings

__all__ = ["close_worker", "register", "run_worker", "worker_config"]

WORKER_FIELDS = ("run_id", "group_id", "tick_s", "lateness_s", "snapshot_every", "delivery",
                 "data_dir", "duckdb_path")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a stream worker: Kafka -> validated -> folded -> KPIs -> DuckDB",
        description=(
            "Consume the facility topics with Faust, validate every event (bad ones go to "
            "twin.deadletter with the reason), fold them into the twin state, close ticks on "
            "event time, publish KPIs to twin.kpis and land ticks and snapshots in DuckDB. "
            "On start it resumes from the run's newest snapshot. Stops on Ctrl-C / SIGTERM."
        ),
    )
    add_kafka_flags(parser)
    group = parser.add_argument_group("twin")
    add_setting_flags(group, *WORKER_FIELDS)
    group.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many wall-clock seconds without a record (finite runs, demos)",
    )
    group.add_argument(
        "--no-gpu-snapshot",
        action="store_true",
        help="do not land per-GPU rows with each snapshot (the state blob is still written)",
    )
    group.add_argument(
        "--fresh",
        action="store_true",
        help="start the run anew (forget its rows and snapshots) from the current end of the "
        "topics, instead of resuming from its newest snapshot",
    )
    scale = parser.add_argument_group("scale-out (docs/SCALE-OUT.md)")
    scale.add_argument(
        "--partial",
        action="store_true",
        help="one of several workers in the consumer group: publish each tick's aggregates of "
        "the racks this worker owns to twin.partials (merged by `twin merge`) instead of "
        "landing KPIs; its DuckDB file keeps its snapshots and dead letters",
    )
    scale.add_argument(
        "--member",
        default="",
        metavar="NAME",
        help="this worker's name in its partials (default: host-pid)",
    )
    scale.add_argument(
        "--stop-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="stop once PATH exists (JSON end offsets written by whoever feeds the topics, "
        "as `twin run --workers` does) and this worker has read its partitions to there",
    )
    group.add_argument("--log-level", default="warn", choices=("error", "warn", "info", "debug"),
                       help="Faust's log level (default: warn)")
    parser.set_defaults(func=_run)


def worker_config(settings: Settings, args: argparse.Namespace) -> Any:
    from streams.worker import WorkerConfig

    if args.idle_exit is not None and args.idle_exit <= 0:
        raise CliError("--idle-exit must be a positive number of seconds")
    if args.stop_file is not None and args.idle_exit is None:
        args.idle_exit = 3.0  # the stop timer's period; the file decides when
    return WorkerConfig(
        run_id=settings.run_id,
        tick_s=settings.tick_s,
        lateness_s=settings.lateness_s,
        snapshot_every=settings.snapshot_every,
        group_id=settings.group_id,
        idle_exit_s=args.idle_exit,
        per_gpu_snapshot=not args.no_gpu_snapshot,
        partial=args.partial,
        member=args.member,
        delivery=settings.delivery,
    )


def run_worker(
    settings: Settings,
    bootstrap: str,
    config: Any,
    log_level: str = "warn",
    *,
    fresh: bool = False,
    stop_file: Path | None = None,
) -> int:
    """Run the worker until it is stopped (signal, or --idle-exit); returns the exit code."""

    from streams.app import end_offsets, make_app, run_faust
    from streams.topics import ensure_topics
    from streams.worker import TwinWorker

    ensure_topics(settings, bootstrap=bootstrap)
    worker = TwinWorker(config, settings.duckdb_path)
    worker.stop_file = stop_file
    worker.on_assign = lambda held, total: print(
        f"twin worker: holds facility.gpu partitions {list(held)} of {total}",
        file=sys.stderr, flush=True,
    )
    try:
        ends = end_offsets(settings, bootstrap)
        resume = worker.start(fresh_from=ends if fresh else None, end_offsets=ends)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    how = "from the end of the topics" if fresh else (
        f"from snapshot {worker.snapshot_id}" if worker.snapshot_id else "from the start of the log"
    )
    print(f"twin worker: run {config.run_id}, {len(resume)} partitions positioned, reading {how}",
          file=sys.stderr, flush=True)
    app = make_app(settings, bootstrap, worker)
    code = 0
    try:
        run_faust(app, log_level)
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        close_worker(worker)
    s = worker.stats
    logging.getLogger(__name__).info(
        "worker stopped; %d records from before a seek skipped; no record after the start "
        "position on %d partitions", worker.pipeline.stats.skipped, len(worker.pipeline.unsynced)
    )
    landed = "published to twin.partials" if config.partial else "landed"
    print(
        f"twin worker: {s.records} records, {s.ticks} ticks {landed}, {s.dead_letters} dead "
        f"letters, {s.snapshots} snapshots -> {settings.duckdb_path}"
    )
    return code


def close_worker(worker: Any) -> None:
    """Close a worker (last snapshot, queued DuckDB writes landed); a failed write is a message."""
    import duckdb

    try:
        worker.close()
    except duckdb.Error as exc:
        raise CliError(
            f"a DuckDB write failed; the run's latest rows may be missing: {exc}"
        ) from None


def _run(args: argparse.Namespace) -> int:
    from streams.broker import local_broker

    settings = settings_from_args(args)
    config = worker_config(settings, args)
    with local_broker(settings) as bootstrap:
        return run_worker(settings, bootstrap, config, args.log_level, fresh=args.fresh,
                          stop_file=args.stop_file)
