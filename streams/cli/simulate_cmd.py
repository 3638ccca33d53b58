"""``twin simulate``: run a facility scenario into Kafka, into an event-log file, or for its truth.

Examples::

    twin simulate --scenario small --duration 2m                 # produce to Kafka (local broker)
    twin simulate --scenario colossus1-mixed --duration 30s --out run.twinlog --truth truth.parquet
    twin simulate --scenario colossus1-mixed --duration 6h --summary   # ground truth, no events
    twin simulate --scenario small --duration 2m --telemetry-format binary --readings-per-message 10
    twin simulate --list
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.config import Scenario
from sim.engine import IntervalError
from sim.eventlog import EventLogWriter
from sim.placement import PlacementError
from sim.producer import KafkaSink, ProduceError
from sim.run import RunResult, RunStats, Sink, simulate
from sim.scenario import ScenarioError, list_scenarios, load_scenario
from sim.summary import Summary
from sim.timefmt import format_duration, parse_duration_s
from streams.broker import BrokerError, ensure_broker
from streams.cli.main import CliError
from streams.cli.options import add_kafka_flags, add_setting_flags, settings_from_args
from streams.topics import TopicError, ensure_topics

__all__ = ["parse_speed", "register", "render_summary", "telemetry_overrides"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a facility scenario: to Kafka, to an event-log file, or for its ground truth",
        description=(
            "Simulate the facility of a scenario (seeded, deterministic) and produce its events "
            "to Kafka (default; the local broker is started if no cluster is configured), or "
            "write them to an event-log file (--out), or only compute the ground truth "
            "(--summary). --truth writes the ground-truth rows to Parquet in any mode."
        ),
        epilog=f"Shipped scenarios: {', '.join(list_scenarios())}.",
    )
    parser.add_argument(
        "--scenario",
        metavar="NAME|PATH",
        default=None,
        help="a shipped scenario name or a TOML file (see --list)",
    )
    parser.add_argument(
        "--duration",
        default="1m",
        metavar="DURATION",
        help="event time to simulate: 90s, 10m, 1h, 1h30m (default: 1m)",
    )
    parser.add_argument(
        "--speed",
        default="max",
        metavar="max|N",
        help="pace event time at N x real time, or 'max' (default)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="override the scenario's seed (same seed => same bytes)",
    )
    parser.add_argument(
        "--telemetry-format",
        choices=("json", "binary"),
        default=None,
        help="gpu_telemetry wire format: json (v1, one reading a message) or binary (packed "
        "columns, docs/EVENTS.md) (default: the scenario's telemetry.format, json)",
    )
    parser.add_argument(
        "--readings-per-message",
        type=int,
        default=None,
        metavar="K",
        help="binary telemetry: consecutive readings per message, an exporter pushing every K "
        "intervals (default: the scenario's telemetry.readings_per_message, 1)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the records to this event-log file instead of Kafka",
    )
    parser.add_argument(
        "--truth",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the ground truth (per tick and scope) to this Parquet file",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="emit nothing; compute and print the ground-truth summary",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --summary: simulation step (default: the truth tick)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_kafka_flags(parser)
    add_setting_flags(parser, "data_dir", "broker_port")
    parser.set_defaults(func=_run)


def telemetry_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Scenario overrides from --telemetry-format and --readings-per-message."""
    tel: dict[str, Any] = {}
    if args.telemetry_format is not None:
        tel["format"] = args.telemetry_format
    if args.readings_per_message is not None:
        if args.readings_per_message < 1:
            raise CliError(f"--readings-per-message: must be >= 1, got {args.readings_per_message}")
        tel["readings_per_message"] = args.readings_per_message
        if args.telemetry_format is None and args.readings_per_message > 1:
            tel["format"] = "binary"  # more than one reading a message is binary only
    return {"telemetry": tel} if tel else {}


def parse_speed(text: str) -> float | None:
    """``max`` -> None (as fast as possible); a positive number -> that factor."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"--speed: expected 'max' or a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise CliError(f"--speed: expected 'max' or a number > 0, got {text!r}")
    return value


def _load(args: argparse.Namespace) -> tuple[Scenario, float]:
    if args.scenario is None:
        raise CliError(
            f"--scenario is required (one of: {', '.join(list_scenarios())}, or a TOML file)"
        )
    try:
        duration = parse_duration_s(args.duration)
    except ValueError as exc:
        raise CliError(f"--duration: {exc}") from None
    if duration <= 0:
        raise CliError(f"--duration: must be > 0, got {args.duration!r}")
    try:
        scenario = load_scenario(args.scenario, telemetry_overrides(args), seed=args.seed)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    if args.interval is not None and not args.summary:
        raise CliError("--interval only applies with --summary")
    if args.interval is not None and args.interval <= 0:
        raise CliError(f"--interval: must be > 0, got {args.interval}")
    if args.summary and args.out is not None:
        raise CliError("--summary emits nothing: drop --out, or drop --summary")
    return scenario, duration


def _run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    if args.list:
        for name in list_scenarios():
            print(f"{name:24s} {load_scenario(name).scenario.description}")
        return 0
    scenario, duration = _load(args)
    speed = parse_speed(args.speed)
    if args.summary:
        interval = args.interval or scenario.telemetry.truth_tick_s
        result = _execute(
            scenario, duration, None, interval=interval, speed=speed, console=console, args=args
        )
    elif args.out is not None:
        with EventLogWriter(args.out) as writer:
            result = _execute(
                scenario, duration, writer, interval=None, speed=speed, console=console, args=args
            )
    else:
        result = _produce(scenario, duration, speed, console, args)
    if args.truth is not None:
        result.truth.write_parquet(args.truth)
    if args.json:
        doc: dict[str, Any] = {"summary": result.summary.to_dict()}
        if not args.summary:
            doc["run"] = _stats_dict(result.stats)
        print(json.dumps(doc, indent=2))
        return 0
    out = Console()
    if not args.summary:
        out.print(_stats_table(result.stats, args))
    out.print(render_summary(result.summary))
    if args.truth is not None:
        print(f"ground truth: {len(result.truth)} rows -> {args.truth}")
    return 0


def _produce(
    scenario: Scenario,
    duration: float,
    speed: float | None,
    console: Console,
    args: argparse.Namespace,
) -> RunResult:
    settings = settings_from_args(args)
    try:
        bootstrap = ensure_broker(settings, progress=console.print)
        ensure_topics(settings, bootstrap=bootstrap)
        with KafkaSink(settings.kafka_python_kwargs(bootstrap)) as sink:
            result = _execute(
                scenario, duration, sink, interval=None, speed=speed, console=console, args=args
            )
    except (BrokerError, TopicError, ProduceError, KafkaError) as exc:
        raise CliError(f"Kafka: {exc}") from None
    console.print(f"produced to {bootstrap}")
    return result


def _execute(
    scenario: Scenario,
    duration: float,
    sink: Sink | None,
    *,
    interval: float | None,
    speed: float | None,
    console: Console,
    args: argparse.Namespace,
) -> RunResult:
    what = "truth" if sink is None else "events"
    with Progress(
        TextColumn(f"[bold]{scenario.name}[/] {what}"),
        BarColumn(),
        TextColumn("{task.fields[sim]} / " + format_duration(duration)),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        disable=args.no_progress or not console.is_terminal,
        transient=False,
    ) as bar:
        task: TaskID = bar.add_task("run", total=duration, sim="0s", rate="")

        def progress(stats: RunStats) -> None:
            if stats.intervals % 5 and stats.sim_seconds < duration:
                return
            rate = f"{stats.x_real_time:.1f}x real time, {stats.records:,} events"
            bar.update(
                task, completed=stats.sim_seconds, sim=format_duration(stats.sim_seconds), rate=rate
            )

        try:
            return simulate(
                scenario, duration, sink=sink, interval_s=interval, speed=speed, progress=progress
            )
        except (PlacementError, IntervalError) as exc:
            raise CliError(f"scenario {scenario.name}: {exc}") from None


def _stats_dict(s: RunStats) -> dict[str, float]:
    return {
        "sim_seconds": s.sim_seconds,
        "events": s.records,
        "bytes": s.bytes,
        "gpu_samples": s.gpu_samples,
        "wall_s": s.wall_s,
        "x_real_time": s.x_real_time,
        "gpu_samples_per_s": s.gpu_samples_per_s,
        "mb_per_s": s.bytes / 1e6 / s.wall_s if s.wall_s > 0 else 0.0,
    }


def _stats_table(s: RunStats, args: argparse.Namespace) -> Table:
    d = _stats_dict(s)
    table = Table(title="run", show_header=False)
    table.add_row("event time", format_duration(s.sim_seconds))
    table.add_row("events", f"{s.records:,}")
    table.add_row("bytes", f"{s.bytes / 1e6:,.1f} MB")
    table.add_row("GPU samples", f"{s.gpu_samples:,}")
    table.add_row("wall time", f"{s.wall_s:.2f} s")
    table.add_row(
        "rate",
        f"{d['gpu_samples_per_s']:,.0f} GPU samples/s, "
        f"{d['x_real_time']:.1f}x real time, {d['mb_per_s']:.0f} MB/s",
    )
    table.add_row("written to", str(args.out) if args.out is not None else "Kafka")
    return table


def render_summary(s: Summary) -> Table:
    """The ground-truth summary as a rich table."""
    table = Table(
        title=f"ground truth: {s.scenario} (seed {s.seed}, "
        f"{format_duration(s.seconds)} of event time)",
        show_header=False,
    )
    models = ", ".join(f"{n:,} {m}" for m, n in s.gpus_by_model.items())
    table.add_row("GPUs", f"{s.gpus:,} ({models}) in {s.racks:,} racks")
    table.add_row(
        "facility power at full load",
        f"{s.full_load_facility_mw:.1f} MW (IT {s.full_load_it_mw:.1f} MW, "
        f"PUE {s.full_load_pue:.3f})",
    )
    table.add_row(
        "facility power, run mean",
        f"{s.mean_facility_mw:.1f} MW (IT {s.mean_it_mw:.1f} MW, PUE {s.pue:.3f})",
    )
    table.add_row("facility MFU", f"{s.mfu:.2%}")
    table.add_row("GPU time", ", ".join(f"{k} {v:.1%}" for k, v in s.fractions.items()))
    for g in s.generations:
        table.add_row(f"MFU {g.model}", f"{g.mfu:.2%} ({g.gpus:,} GPUs)")
    table.add_row("energy cost", f"${s.energy_cost_usd:,.0f}")
    for t in s.tenants:
        per = (
            f", ${t.usd_per_useful_pflop_h:,.2f} per useful PFLOP-h"
            if t.usd_per_useful_pflop_h is not None
            else ""
        )
        table.add_row(
            f"tenant {t.tenant}",
            f"{t.gpus:,.0f} GPUs, MFU {t.mfu:.2%}, {t.useful_pflop_h:,.0f} useful PFLOP-h, "
            f"energy ${t.energy_cost_usd:,.0f} ({t.facility_mwh:,.1f} MWh), "
            f"revenue ${t.revenue_usd:,.0f}{per}",
        )
    return table
