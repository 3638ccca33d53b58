"""``twin run``: the embedded all-in-one. Local broker (unless a cluster is configured), the
simulator producing to Kafka in a thread, one Faust worker folding it live (or, with
``--workers N``, N worker processes in one consumer group and a merger, see
:mod:`streams.scaleout`), DuckDB landing; then the run summary from DuckDB. Ctrl-C stops
everything it started."""

from __future__ import annotations

import argparse
import json
import os
import threading
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import add_kafka_flags, add_setting_flags, settings_from_args
from streams.cli.simulate_cmd import parse_speed
from streams.cli.worker_cmd import WORKER_FIELDS, close_worker

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="all-in-one: local broker, simulator, worker, DuckDB, then the run summary",
        description=(
            "Simulate a scenario into Kafka while one Faust worker (or, with --workers N, N "
            "worker processes in one consumer group plus a merger) folds it live into the twin "
            "and lands ticks and snapshots in DuckDB; print the summary (facility MFU, the waste "
            "ledger, top stragglers, tenant economics) when the simulation is done. Starts the "
            "local broker when no cluster is configured and stops it at the end."
        ),
    )
    parser.add_argument("--scenario", default="small",
                        help="shipped scenario name or path to a TOML file (default: small)")
    parser.add_argument("--duration", default="5m",
                        help="simulated event time, e.g. 90s, 10m, 1h (default: 5m)")
    parser.add_argument("--speed", default="max",
                        help="'max' or N x real time (default: max)")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    parser.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="worker processes in the consumer group (default 1). N > 1: each is a "
        "`twin worker --partial` owning its share of the facility.gpu partitions, and this "
        "process merges their partials into the DuckDB file (`twin merge`; docs/SCALE-OUT.md)",
    )
    parser.add_argument("--top", type=int, default=5, help="straggler racks to show (default 5)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--log-level", default="error",
                        choices=("error", "warn", "info", "debug"), help="Faust's log level")
    add_kafka_flags(parser)
    group = parser.add_argument_group("twin")
    add_setting_flags(group, *WORKER_FIELDS, "broker_port", "broker_controller_port")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from sim.scenario import ScenarioError, load_scenario
    from sim.timefmt import parse_duration_s
    from streams.app import end_offsets, make_app, run_faust
    from streams.broker import local_broker
    from streams.feed import simulate_into_kafka
    from streams.topics import ensure_topics
    from streams.worker import TwinWorker, WorkerConfig

    try:
        scenario = load_scenario(args.scenario, seed=args.seed)
        duration = parse_duration_s(args.duration)
    except (ScenarioError, ValueError) as exc:
        raise CliError(str(exc)) from None
    speed = parse_speed(args.speed)
    if not 1 <= args.workers <= 64:
        raise CliError(f"--workers must be between 1 and 64, not {args.workers}")
    run_id_given = args.setting__run_id is not None or "TWIN_RUN_ID" in os.environ
    settings = settings_from_args(args, run_id=None if run_id_given else scenario.name)
    console = Console(stderr=True)
    config = WorkerConfig(
        run_id=settings.run_id, tick_s=settings.tick_s, lateness_s=settings.lateness_s,
        snapshot_every=settings.snapshot_every, group_id=settings.group_id, idle_exit_s=3.0,
        scenario=scenario.name, seed=scenario.seed, delivery=settings.delivery,
    )
    if args.workers > 1:
        from streams.scaleout import run_scaled_out

        with local_broker(settings, progress=console.print) as bootstrap:
            ensure_topics(settings, bootstrap=bootstrap)
            try:
                run_scaled_out(settings, bootstrap, scenario, duration_s=duration, speed=speed,
                               workers=args.workers, progress=console.print,
                               log_level=args.log_level)
            except RuntimeError as exc:
                raise CliError(str(exc)) from None
        return _print_summary(settings, config.run_id, args)
    with local_broker(settings, progress=console.print) as bootstrap:
        ensure_topics(settings, bootstrap=bootstrap)
        worker = TwinWorker(config, settings.duckdb_path)
        ends = end_offsets(settings, bootstrap)
        worker.start(fresh_from=ends, end_offsets=ends)
        done = threading.Event()
        stop = threading.Event()
        worker.input_done = done
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                simulate_into_kafka(settings, bootstrap, scenario, duration, speed, halt=stop,
                                    progress=console.print)
            except BaseException as exc:  # surfaced after the worker stops
                failure.append(exc)
            finally:
                try:  # the worker stops once it has read everything produced
                    worker.stop_at = end_offsets(settings, bootstrap)
                except Exception:  # it then stops when idle
                    worker.stop_at = None
                done.set()

        console.print(f"run {config.run_id}: {scenario.name} for {args.duration} at "
                      f"{args.speed} speed -> {settings.duckdb_path}")
        producer = threading.Thread(target=produce, name="simulator", daemon=True)
        producer.start()
        app = make_app(settings, bootstrap, worker)
        try:
            run_faust(app, args.log_level)
        finally:
            stop.set()
            producer.join(timeout=30)
            close_worker(worker)
        if failure:
            raise CliError(f"simulator failed: {failure[0]!r}")
    s = worker.stats
    console.print(f"worker: {s.records:,} records, {s.ticks} ticks, {s.dead_letters} dead letters,"
                  f" {s.snapshots} snapshots")
    return _print_summary(settings, config.run_id, args)


def _print_summary(settings: Any, run_id: str, args: argparse.Namespace) -> int:
    import duckdb
    from rich.console import Console

    from streams.summary import render_summary, summary_data

    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        data = summary_data(con, run_id, top=args.top)
    finally:
        con.close()
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        Console().print(render_summary(data))
    return 0
