"""``twin state --at TIME``: the twin at a past event time (nearest snapshot + log replay)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from streams.cli.main import CliError
from streams.cli.options import add_kafka_flags, add_setting_flags, settings_from_args

__all__ = ["register"]

SHOWN = ("gpus", "mfu", "compute", "straggler_wait", "comm_stall", "allocated_idle",
         "unallocated", "down", "power_w", "energy_j", "recoverable_j", "energy_usd",
         "revenue_usd")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "state",
        help="the twin at a past event time: nearest snapshot + replay of the log",
        description=(
            "Rebuild a run's twin at any past event time from the nearest earlier snapshot in "
            "DuckDB plus a replay of the Kafka log, and print the KPIs of the tick that contains "
            "that time, next to what the live run wrote for it."
        ),
    )
    parser.add_argument("--at", required=True, metavar="TIME",
                        help="event time: ISO 8601 (2026-10-01T00:01:05Z) or integer ns")
    parser.add_argument("--scope", default="facility,generation,tenant",
                        help="scope kinds to print, comma-separated (default: "
                        "facility,generation,tenant; also campus, hall, rack, job)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_kafka_flags(parser)
    group = parser.add_argument_group("twin")
    add_setting_flags(group, "run_id", "data_dir", "duckdb_path")
    parser.set_defaults(func=_run)


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> int:
    from sim.timefmt import parse_instant_ns

    if text.strip().isdigit():
        return int(text)
    try:
        return parse_instant_ns(text)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _live_rows(path: Any, run_id: str, tick_end: int) -> dict[tuple[str, str], dict[str, float]]:
    from streams.writer import connect_read_only

    con = connect_read_only(path)
    try:
        cur = con.execute(
            f"SELECT scope, scope_id, {', '.join(SHOWN)} FROM kpi"
            " WHERE run_id = ? AND tick_end_ns = ?",
            [run_id, tick_end],
        )
        return {(r[0], r[1]): dict(zip(SHOWN, r[2:], strict=True)) for r in cur.fetchall()}
    finally:
        con.close()


def _same(a: float, b: float | None) -> bool:
    if b is None:
        return False
    if math.isnan(a) and math.isnan(b):
        return True
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from streams.broker import local_broker
    from streams.timetravel import TimeTravelError, rebuild_at

    at_ns = _instant(args.at)
    scopes = [s.strip() for s in args.scope.split(",") if s.strip()]
    settings = settings_from_args(args)
    console = Console(stderr=True)
    try:
        with local_broker(settings, progress=console.print) as bootstrap:
            rebuilt = rebuild_at(settings, bootstrap, settings.run_id, at_ns)
    except (TimeTravelError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from None
    tick = rebuilt.tick
    unknown = [s for s in scopes if s not in tick.scopes]
    if unknown:
        raise CliError(f"unknown scope {unknown[0]!r}; known: {', '.join(tick.scopes)}")
    live = _live_rows(settings.duckdb_path, settings.run_id, tick.end_ns)
    rows = []
    for scope in scopes:
        table = tick.scopes[scope]
        for sid in table.ids:
            got = table.row(sid)
            want = live.get((scope, sid))
            same = want is not None and all(_same(got[k], want.get(k)) for k in SHOWN)
            rows.append({"scope": scope, "scope_id": sid, **{k: got[k] for k in SHOWN},
                         "matches_live": same})
    origin = (f"snapshot {rebuilt.from_snapshot}" if rebuilt.from_snapshot is not None
              else "the run's start")
    if args.json:
        print(json.dumps({"run_id": settings.run_id, "at_ns": at_ns, "tick_start_ns": tick.start_ns,
                          "tick_end_ns": tick.end_ns, "from": origin,
                          "replayed_records": rebuilt.replayed_records, "rows": rows},
                         default=str))
        return 0
    out = Table(
        title=f"run {settings.run_id}, tick {_iso(tick.start_ns)} - {_iso(tick.end_ns)}",
        caption=f"rebuilt from {origin} + {rebuilt.replayed_records:,} records of the log",
    )
    for col in ("scope", "id", "GPUs", "MFU", "compute", "wait", "comm", "MW", "= live"):
        out.add_column(col, justify="left" if col in ("scope", "id") else "right")
    for r in rows:
        out.add_row(r["scope"], r["scope_id"], f"{r['gpus']:,.0f}", f"{r['mfu']:.2%}",
                    f"{r['compute']:.1%}", f"{r['straggler_wait']:.1%}", f"{r['comm_stall']:.1%}",
                    f"{r['power_w'] / 1e6:.3f}", "yes" if r["matches_live"] else "NO")
    Console().print(out)
    if not all(r["matches_live"] for r in rows):
        print("twin state: some rows differ from what the live run wrote", file=sys.stderr)
        return 1
    return 0
