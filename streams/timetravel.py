"""Time travel: the twin at any past event time, rebuilt from the nearest earlier snapshot plus a
replay of the Kafka log (the source of truth), through the same :class:`Pipeline` the worker
runs. The result is the tick that contains the asked-for time, with every KPI the live run
computed for it."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
from kafka import KafkaConsumer, TopicPartition

from streams import store
from streams.pipeline import INPUT_TOPICS, Pipeline, Record
from streams.settings import Settings
from streams.writer import connect_read_only
from twin.results import TickResult
from twin.state import TwinState

__all__ = ["Rebuilt", "TimeTravelError", "rebuild_at"]



class TimeTravelError(ValueError):
    """The run, the time or the log cannot give that moment; the message says why."""


@dataclass(frozen=True, slots=True)
class Rebuilt:
    tick: TickResult
    from_snapshot: int | None  # snapshot id, None when replayed from the run's start
    replayed_records: int


def _run_row(con: duckdb.DuckDBPyConnection, run_id: str) -> tuple[int, dict[str, object]]:
    row = con.execute("SELECT tick_ns, config FROM runs WHERE run_id = ?", [run_id]).fetchone()
    if row is None:
        known = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY 1").fetchall()]
        raise TimeTravelError(f"no run named {run_id!r}; runs in this file: {known or 'none'}")
    return int(row[0]), json.loads(row[1] or "{}")


def _start(
    con: duckdb.DuckDBPyConnection, run_id: str, at_ns: int
) -> tuple[TwinState, dict[tuple[str, int], int], int | None]:
    """The state and offsets to replay from: the newest snapshot whose tick ended at or before
    ``at_ns``, else an empty state at the run's start offsets."""
    tick_ns, config = _run_row(con, run_id)
    row = con.execute(
        "SELECT snapshot_id, offsets, format, state FROM snapshots"
        " WHERE run_id = ? AND tick_end_ns <= ? ORDER BY snapshot_id DESC LIMIT 1",
        [run_id, at_ns],
    ).fetchone()
    if row is not None:
        snapshot_id, offsets_json, fmt, blob = row
        if fmt != store.SNAPSHOT_FORMAT:
            raise TimeTravelError(
                f"snapshot {snapshot_id} has format {fmt}, not {store.SNAPSHOT_FORMAT}"
            )
        return pickle.loads(blob), _offsets(json.loads(offsets_json)), int(snapshot_id)
    starts = config.get("start_offsets")
    return TwinState(tick_ns), _offsets(starts if isinstance(starts, list) else []), None


def _offsets(items: list[dict[str, object]]) -> dict[tuple[str, int], int]:
    return {(str(o["topic"]), int(str(o["partition"]))): int(str(o["offset"])) for o in items}


def _first_tick_end(con: duckdb.DuckDBPyConnection, run_id: str, at_ns: int) -> int:
    """End of the tick the live run wrote that contains ``at_ns``."""
    row = con.execute(
        "SELECT min(tick_start_ns), max(tick_end_ns) FROM kpi"
        " WHERE run_id = ? AND scope = 'facility'",
        [run_id],
    ).fetchone()
    if row is None or row[0] is None:
        raise TimeTravelError(f"run {run_id!r} has no ticks yet")
    lo, hi = int(row[0]), int(row[1])
    if not lo <= at_ns < hi:
        raise TimeTravelError(
            f"the run covers event time [{lo}, {hi}) ns; {at_ns} is outside it"
        )
    return hi


def rebuild_at(
    settings: Settings,
    bootstrap: str,
    run_id: str,
    at_ns: int,
    *,
    progress: Callable[[int], None] | None = None,
    poll_ms: int = 1000,
) -> Rebuilt:
    """Rebuild ``run_id`` at event time ``at_ns`` and return the tick containing it."""
    con = connect_read_only(settings.duckdb_path)
    try:
        _run_row(con, run_id)
        _first_tick_end(con, run_id, at_ns)
        state, offsets, snapshot_id = _start(con, run_id, at_ns)
    finally:
        con.close()
    consumer = KafkaConsumer(
        **settings.kafka_python_kwargs(bootstrap),
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 << 20,
        fetch_max_bytes=64 << 20,
    )
    try:
        tps = [
            TopicPartition(t, p)
            for t in INPUT_TOPICS
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not tps:
            raise TimeTravelError("the input topics do not exist on this cluster")
        consumer.assign(tps)
        begin = consumer.beginning_offsets(tps)
        ends = consumer.end_offsets(tps)
        start = {}
        for tp in tps:
            off = offsets.get((tp.topic, tp.partition), begin[tp])
            if off < begin[tp]:
                raise TimeTravelError(
                    f"{tp.topic}[{tp.partition}] no longer holds offset {off} (retention); "
                    "the log cannot replay that far back"
                )
            consumer.seek(tp, off)
            start[(tp.topic, tp.partition)] = off
        pipeline = Pipeline(state, known_offsets=start)
        pipeline.set_backlog({(tp.topic, tp.partition): int(ends[tp]) for tp in tps})
        replayed = 0
        while True:
            batch = consumer.poll(timeout_ms=poll_ms, max_records=5000)
            records = [
                Record(m.topic, m.partition, m.offset, m.key, m.value)
                for msgs in batch.values()
                for m in msgs
            ]
            pipeline.ingest(records)
            replayed += len(records)
            if progress is not None and records:
                progress(replayed)
            done = all(consumer.position(tp) >= ends[tp] for tp in tps)
            ticks = pipeline.advance() + (pipeline.flush() if done else [])
            for tick in ticks:
                if tick.start_ns <= at_ns < tick.end_ns:
                    return Rebuilt(tick, snapshot_id, replayed)
                if tick.start_ns > at_ns:
                    raise TimeTravelError(
                        f"no tick of the replay contains {at_ns} (a gap in event time)"
                    )
            if done:
                raise TimeTravelError(
                    "the log ended before that moment: was the run produced to this cluster?"
                )
    finally:
        consumer.close()
