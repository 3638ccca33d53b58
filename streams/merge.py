"""Scale-out: merge the workers' per-tick partials into facility ticks (``twin merge``).

Workers started with ``--partial`` share the ``facility.gpu`` partitions through their consumer
group; each folds every low-volume event and the telemetry of its own racks, and publishes one
``twin.partials`` message per closed tick: the additive aggregates (GPU-time, credited FLOPs,
energies by cause, revenue, straggler seconds ...) of every scope over its racks, and the
telemetry partitions they cover. A tick is complete when the partials received for it cover
every telemetry partition exactly once; then :func:`twin.merge_partials` sums them and derives
the KPIs (overhead from the facility meter, counted once), and the merger lands the tick in its
DuckDB file (the same tables a single worker writes) and publishes it to ``twin.kpis``.

- A partial that repeats partitions already merged for its tick (a worker replaying after a
  restart, or two owners around a rebalance) is dropped and counted (``duplicates`` /
  ``conflicts``); nothing is summed twice.
- Ticks already in the DuckDB file for the run are not landed again (a restarted merger reads
  ``twin.partials`` from the start).
- A tick that never becomes complete (a worker stopped for good) is not landed; it is reported
  when the merger stops, with the partitions that are missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams import store
from streams.settings import Settings
from streams.topics import TWIN_KPIS, TWIN_PARTIALS
from streams.worker import PARTIAL_FORMAT, kpi_messages
from streams.writer import DuckDBWriter
from twin import merge_partials
from twin.results import PartialTick, TickResult

__all__ = ["MergeStats", "PartialsMerger", "run_merger"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MergeStats:
    messages: int = 0  # partials of this run received
    other_runs: int = 0  # partials of other runs, skipped
    invalid: int = 0  # messages that are not partials (reason logged)
    duplicates: int = 0  # same tick and partitions as a partial already taken
    conflicts: int = 0  # overlapping partitions with a partial already taken
    merged: int = 0  # ticks completed
    already_landed: int = 0  # complete ticks the DuckDB file already held
    members: dict[str, set[int]] = field(default_factory=dict)  # member -> partitions it sent


@dataclass(slots=True)
class _Pending:
    total: int
    covered: set[int] = field(default_factory=set)
    partials: list[tuple[tuple[int, ...], PartialTick]] = field(default_factory=list)
    seen: set[tuple[int, ...]] = field(default_factory=set)


class PartialsMerger:
    """Collects ``twin.partials`` messages of one run and returns ticks as they complete."""

    def __init__(self, run_id: str, landed: set[int] | None = None) -> None:
        self.run_id = run_id
        self.landed: set[int] = set(landed or ())  # tick ends already landed
        self.pending: dict[tuple[int, int], _Pending] = {}
        self.stats = MergeStats()

    def _parse(self, value: bytes | None) -> tuple[tuple[int, ...], int, str, PartialTick] | None:
        """(partitions, partitions_total, member, partial), or None for another run's message
        or one that is not a partial (counted, logged)."""
        try:
            body = orjson.loads(value or b"")
            if not isinstance(body, dict) or body.get("format") != PARTIAL_FORMAT:
                raise ValueError(f"not a partials message of format {PARTIAL_FORMAT}")
            if body.get("run_id") != self.run_id:
                self.stats.other_runs += 1
                return None
            parts = tuple(sorted(int(p) for p in body["partitions"]))
            return parts, int(body["partitions_total"]), str(body["member"]), \
                PartialTick.from_dict(body["tick"])
        except (ValueError, KeyError, TypeError) as exc:
            self.stats.invalid += 1
            log.warning("twin.partials: skipping a message that is not a partial: %s", exc)
            return None

    def add(self, value: bytes | None) -> list[TickResult]:
        """Take one message; the ticks it completes (merged), in tick order."""
        parsed = self._parse(value)
        if parsed is None:
            return []
        parts, total, member, partial = parsed
        self.stats.messages += 1
        self.stats.members.setdefault(member, set()).update(parts)
        key = (partial.start_ns, partial.end_ns)
        if partial.end_ns in self.landed:
            self.stats.duplicates += 1
            return []
        pend = self.pending.setdefault(key, _Pending(total))
        if parts in pend.seen:
            self.stats.duplicates += 1
            return []
        if pend.covered & set(parts) or total != pend.total:
            self.stats.conflicts += 1
            log.warning(
                "tick ending %d: partitions %s of member %s overlap the ones merged already "
                "(%s of %d): dropped", partial.end_ns, list(parts), member,
                sorted(pend.covered), pend.total,
            )
            return []
        pend.seen.add(parts)
        pend.covered.update(parts)
        pend.partials.append((parts, partial))
        if len(pend.covered) < pend.total:
            return []
        del self.pending[key]
        self.landed.add(partial.end_ns)
        self.stats.merged += 1
        # summed in partition order, so the figures do not depend on arrival order
        return [merge_partials([p for _, p in sorted(pend.partials, key=lambda x: x[0])])]

    def incomplete(self) -> list[tuple[int, list[int]]]:
        """Ticks still waiting: (tick end, missing partitions)."""
        return [
            (end, sorted(set(range(p.total)) - p.covered))
            for (_, end), p in sorted(self.pending.items())
        ]


def _landed_ticks(writer: DuckDBWriter, run_id: str) -> set[int]:
    rows = writer.run(
        lambda con: con.execute(
            "SELECT DISTINCT tick_end_ns FROM kpi WHERE run_id = ?", [run_id]
        ).fetchall()
    )
    return {int(r[0]) for r in rows}


def run_merger(
    settings: Settings,
    bootstrap: str,
    duckdb_path: Path,
    *,
    run_id: str,
    scenario: str | None = None,
    seed: int | None = None,
    tick_ns: int | None = None,
    fresh: bool = False,
    inputs_done: Callable[[], bool] | None = None,
    idle_exit_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> PartialsMerger:
    """Merge ``twin.partials`` of ``run_id`` into ``duckdb_path`` until stopped.

    Stops when ``inputs_done()`` turns true (the workers have exited) and the topic has been
    read to its end, or after ``idle_exit_s`` without a partial of the run; else on Ctrl-C.
    ``fresh``: forget the run's rows in the DuckDB file first."""
    writer = DuckDBWriter(duckdb_path, ddl=store.DDL).start()
    consumer = KafkaConsumer(
        **settings.kafka_python_kwargs(bootstrap), enable_auto_commit=False, group_id=None
    )
    producer = KafkaProducer(
        **settings.kafka_python_kwargs(bootstrap), linger_ms=20, max_request_size=16 << 20
    )
    try:
        if fresh:
            writer.run(store.reset_run_op(run_id))
        config: dict[str, Any] = {"merged_from": TWIN_PARTIALS}
        if tick_ns is not None:
            writer.run(store.run_op(run_id, scenario, seed, tick_ns, config))
        merger = PartialsMerger(run_id, _landed_ticks(writer, run_id))
        tps = [TopicPartition(TWIN_PARTIALS, p)
               for p in sorted(consumer.partitions_for_topic(TWIN_PARTIALS) or {0})]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        last = time.monotonic()
        ends: dict[Any, int] | None = None
        while True:
            got = consumer.poll(timeout_ms=200, max_records=500)
            done: list[TickResult] = []
            for msgs in got.values():
                for m in msgs:
                    done += merger.add(m.value)
            if got:
                last = time.monotonic()
            if done:
                writer.submit(store.tick_op(run_id, done))
                for tick in done:
                    for key, value in kpi_messages(run_id, tick):
                        producer.send(TWIN_KPIS, key=key, value=value)
                if progress is not None:
                    progress(f"merged {merger.stats.merged} ticks")
            if inputs_done is not None and inputs_done():
                if ends is None:
                    ends = consumer.end_offsets(tps)
                if all(consumer.position(tp) >= end for tp, end in ends.items()):
                    break
            elif idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                break
        producer.flush(timeout=30)
        for end, missing in merger.incomplete():
            log.warning("tick ending %d never completed: partitions %s missing", end, missing)
        return merger
    finally:
        producer.close(timeout=10)
        consumer.close()
        writer.close()
