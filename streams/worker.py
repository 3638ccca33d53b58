"""The worker runtime: a :class:`Pipeline`, the DuckDB writer, snapshots, recovery, publishing.

Transport-neutral: the Faust app (:mod:`streams.app`) hands it records and gives it a
``publish`` coroutine; offline replay drives it the same way. The synchronous part of
:meth:`TwinWorker.on_records` (decode, fold, build the rows and the snapshot) runs without an
``await`` in between, so two agents on one event loop never see a half-folded state.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from streams import store
from streams.pipeline import CLOCK_TOPIC, DeadLetter, Pipeline, Record, TopicPartition
from streams.writer import DuckDBWriter
from twin.checksum import state_checksum
from twin.results import KPI_COLUMNS, TickResult
from twin.state import TwinState

__all__ = [
    "PARTIAL_FORMAT",
    "Publish",
    "TwinWorker",
    "WorkerConfig",
    "WorkerStats",
    "deadletter_value",
    "kpi_messages",
    "read_stop_file",
    "write_stop_file",
]

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes | None, bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What a worker needs beyond the connection settings (resolved once, at the entry point)."""

    run_id: str = "live"
    tick_s: float = 10.0
    lateness_s: float = 1.0
    snapshot_every: int = 6  # ticks
    per_gpu_snapshot: bool = True
    take_max: int = 2000
    take_within_s: float = 0.1
    group_id: str = "colossus-twin"
    idle_exit_s: float | None = None  # finite runs: stop after this long with no record
    scenario: str | None = None
    seed: int | None = None
    #: scale-out: publish each tick's additive partials of the owned racks to ``twin.partials``
    #: (merged by ``twin merge``) instead of landing KPIs in this worker's DuckDB
    partial: bool = False
    member: str = ""  # names this worker in its partials (default: host and pid)
    #: how facility.gpu reaches the fold: "agent" (a Faust agent's stream.take_events) or
    #: "batch" (each fetch of Faust's consumer as one list, streams.delivery)
    delivery: str = "agent"

    @property
    def tick_ns(self) -> int:
        return round(self.tick_s * 1e9)


@dataclass(slots=True)
class WorkerStats:
    started: float = field(default_factory=time.monotonic)
    last_record: float = field(default_factory=time.monotonic)
    records: int = 0
    ticks: int = 0
    dead_letters: int = 0
    snapshots: int = 0


def deadletter_value(dead: DeadLetter) -> bytes:
    """The dead-letter message: the reason, where the record came from, its original bytes."""
    r = dead.record
    return orjson.dumps(
        {
            "reason": dead.reason,
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "key_b64": None if r.key is None else _b64(r.key),
            "value_b64": None if r.value is None else _b64(r.value),
        }
    )


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def kpi_messages(run_id: str, tick: TickResult) -> list[tuple[bytes, bytes]]:
    """One ``twin.kpis`` message per scope kind and tick: the scope table as columns.

    Keyed by scope kind; consumers deduplicate on (run_id, scope, tick_end_ns) since delivery is
    at least once."""
    out: list[tuple[bytes, bytes]] = []
    for scope, table in tick.scopes.items():
        body = {
            "run_id": run_id,
            "scope": scope,
            "tick_start_ns": tick.start_ns,
            "tick_end_ns": tick.end_ns,
            "ids": list(table.ids),
            **{name: table.columns[k] for k, name in enumerate(KPI_COLUMNS)},
        }
        out.append((scope.encode(), orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)))
    return out


#: Version of the ``twin.partials`` message body (see :func:`partial_message`).
PARTIAL_FORMAT = 1


def partial_message(
    run_id: str, member: str, tick: TickResult, held: Sequence[int], total: int
) -> tuple[bytes, bytes]:
    """One ``twin.partials`` message: a worker's additive aggregates of one tick over the racks
    of the telemetry partitions ``held`` (of ``total``). Keyed by run id."""
    body = {
        "format": PARTIAL_FORMAT,
        "run_id": run_id,
        "member": member,
        "partitions": sorted(int(p) for p in held),
        "partitions_total": int(total),
        "tick": tick.partial.to_dict(),
    }
    return run_id.encode(), orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


class TwinWorker:
    """Folds records into the twin, lands ticks and snapshots in DuckDB, publishes KPIs."""

    def __init__(
        self,
        config: WorkerConfig,
        duckdb_path: Path,
        *,
        publish: Publish | None = None,
        kpi_topic: str = "twin.kpis",
        deadletter_topic: str = "twin.deadletter",
        partials_topic: str = "twin.partials",
    ) -> None:
        self.config = config
        self.writer = DuckDBWriter(duckdb_path, ddl=store.DDL)
        self.publish = publish
        self.kpi_topic = kpi_topic
        self.deadletter_topic = deadletter_topic
        self.partials_topic = partials_topic
        self.member = config.member or f"{socket.gethostname()}-{os.getpid()}"
        #: telemetry partitions Kafka assigned this worker (None: not told; then all of them)
        self.telemetry_held: tuple[int, ...] | None = None
        self.telemetry_total = 0
        #: called with (held, total) on every assignment (``twin worker`` prints it)
        self.on_assign: Callable[[tuple[int, ...], int], None] | None = None
        self.pipeline = Pipeline(
            TwinState(config.tick_ns), lateness_ns=round(config.lateness_s * 1e9)
        )
        self.resume: dict[TopicPartition, int] = {}
        self.snapshot_id = 0
        self.stats = WorkerStats()
        #: set by whoever feeds the topics when it is done (``twin run``); an idle exit waits for it
        self.input_done: threading.Event | None = None
        #: where the input partitions ended when the feeder was done: stop once read to there
        self.stop_at: dict[TopicPartition, int] | None = None
        #: a file the feeder writes with the input's end offsets (``twin worker --stop-file``)
        self.stop_file: Path | None = None
        self._ticks_since_snapshot = 0
        self._writes: deque[Future[Any]] = deque()  # queued DuckDB writes, oldest first

    def _reap_writes(self) -> None:
        """Forget the writes that landed; raise the error of one that failed."""
        writes = self._writes
        while writes and writes[0].done():
            writes.popleft().result()

    def _input_complete(self) -> bool:
        """True once whoever feeds the topics has said where the input ends."""
        if self.stop_at is None and self.stop_file is not None:
            self.stop_at = read_stop_file(self.stop_file)
        return self.stop_at is not None

    def caught_up(self) -> bool:
        """True when every partition in ``stop_at`` has been read to its end."""
        if self.stop_at is None:
            return False
        read = self.pipeline.next_offsets
        held = self.telemetry_held
        return all(
            read.get(tp, 0) >= end
            for tp, end in self.stop_at.items()
            if end > 0 and (held is None or tp[0] != CLOCK_TOPIC or tp[1] in held)
        )

    def assign(self, held: Sequence[int], total: int) -> None:
        """The telemetry partitions Kafka assigned this worker, of ``total``.

        A ``--partial`` worker of a finite run (its stop file written: the input is complete)
        keeps the partitions it had: ones it is given now come from a worker that left the
        group because it had read them to the end, and claiming them would make this worker's
        last ticks overlap that worker's partials."""
        if (
            self.config.partial
            and self.telemetry_held is not None
            and self._input_complete()
            and {int(p) for p in held} - set(self.telemetry_held)
        ):
            log.info("input complete: keeping partitions %s, not taking over %s",
                     list(self.telemetry_held), sorted(set(held) - set(self.telemetry_held)))
            held = [p for p in held if int(p) in self.telemetry_held]
        self.telemetry_held = tuple(sorted(int(p) for p in held))
        self.stats.last_record = time.monotonic()  # an idle exit counts from here
        self.telemetry_total = int(total)
        self.pipeline.assign(held, total, partial=self.config.partial)
        log.info("telemetry partitions %s of %d", list(self.telemetry_held), total)
        if self.on_assign is not None:
            self.on_assign(self.telemetry_held, self.telemetry_total)
        if not self.config.partial and len(self.telemetry_held) < total:
            log.warning(
                "this worker holds %d of the %d telemetry partitions: another member is in "
                "group %s (a dead predecessor's session expires within seconds; for several "
                "workers, run each with --partial and `twin merge`)",
                len(self.telemetry_held), total, self.config.group_id,
            )

    @property
    def state(self) -> TwinState:
        return self.pipeline.state

    # ------------------------------------------------------------------------- lifecycle
    def start(
        self,
        *,
        fresh_from: dict[TopicPartition, int] | None = None,
        end_offsets: dict[TopicPartition, int] | None = None,
    ) -> dict[TopicPartition, int]:
        """Open DuckDB, load the newest snapshot of the run (if any) and return the offsets to
        seek to. Rows a crashed run wrote after that snapshot are deleted (replay rewrites them).

        ``fresh_from``: start the run anew (forget its rows and snapshots) and read from these
        offsets (``twin run`` passes the topics' end offsets taken before it simulates).
        ``end_offsets``: where the input partitions end now; the pipeline waits for lagging
        low-volume partitions up to there (see :meth:`Pipeline.set_backlog`).
        """
        self.writer.start()
        cfg = self.config
        snap = None
        if fresh_from is None:
            snap = self.writer.run(lambda con: store.latest_snapshot(con, cfg.run_id))
        else:
            self.resume = dict(fresh_from)
        if snap is not None:
            if snap.state.tick_ns != cfg.tick_ns:
                raise ValueError(
                    f"run {cfg.run_id!r} was snapshotted with ticks of {snap.state.tick_ns / 1e9:g}"
                    f" s, not {cfg.tick_s:g} s: use another --run or the same --tick"
                )
            self.pipeline = Pipeline(
                snap.state, lateness_ns=self.pipeline.lateness_ns, known_offsets=snap.offsets
            )
            self.snapshot_id = snap.snapshot_id
            self.resume = dict(snap.offsets)
            self.writer.run(store.rewind_op(cfg.run_id, snap.tick_end_ns))
            log.info(
                "recovered run %s from snapshot %d (tick end %d), %d partitions to seek",
                cfg.run_id, snap.snapshot_id, snap.tick_end_ns, len(self.resume),
            )
        else:
            self.writer.run(store.reset_run_op(cfg.run_id))
        if fresh_from is not None:
            self.pipeline = Pipeline(
                self.pipeline.state, lateness_ns=self.pipeline.lateness_ns,
                known_offsets=fresh_from,
            )
        if end_offsets is not None:
            self.pipeline.set_backlog(end_offsets)
        self.writer.run(
            store.run_op(
                cfg.run_id,
                cfg.scenario,
                cfg.seed,
                cfg.tick_ns,
                {
                    **_config_dict(cfg),
                    # where the run began reading: time travel before the first snapshot
                    "start_offsets": [
                        {"topic": t, "partition": p, "offset": o}
                        for (t, p), o in sorted((fresh_from or {}).items())
                    ],
                },
            )
        )
        return self.resume

    def close(self, *, final_snapshot: bool = True) -> None:
        """Write a last snapshot (so a restart resumes here) and close DuckDB."""
        if final_snapshot and self.state.tick_start_ns >= 0:
            self._writes.append(self.writer.submit(self._snapshot_op()))
        self.writer.close()
        failed = [f.exception() for f in self._writes if f.done() and f.exception() is not None]
        self._writes.clear()
        if failed:
            raise failed[0]  # type: ignore[misc]

    # ------------------------------------------------------------------------- records
    async def on_records(
        self,
        records: Sequence[Record],
        before_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Fold a batch, queue its DuckDB writes and publish its ticks and dead letters.

        ``before_close`` is awaited after the batch is decoded and before a tick closes, when
        one may close now (the app asks the broker how far the low-volume topics go).

        The writes are queued, not awaited: the writer thread lands them (in order, each in its
        own transaction) while the loop folds the next batch, and a full queue holds the loop
        back. Every operation is built from copies taken now, never from live state, so a
        later fold cannot change what lands. A failed write raises here on a later batch, and
        at :meth:`close`."""
        if not records:
            return
        dead = self.take(records)
        if before_close is not None and self.pipeline.may_close():
            await before_close()
        ops, dead, ticks = self.settle(dead)
        for op in ops:
            self._writes.append(await self.writer.aqueue(op))
        self._reap_writes()
        if self.publish is not None:
            for d in dead:
                await self.publish(self.deadletter_topic, d.record.key, deadletter_value(d))
        await self.emit(ticks)

    async def emit(self, ticks: Sequence[TickResult]) -> None:
        """Publish closed ticks: KPI messages, or in partial mode one partials message each."""
        if self.publish is None:
            return
        run_id = self.config.run_id
        for tick in ticks:
            if self.config.partial:
                held = self.telemetry_held
                if held is None:
                    held = tuple(range(self.telemetry_total))
                key, value = partial_message(run_id, self.member, tick, held,
                                             self.telemetry_total)
                await self.publish(self.partials_topic, key, value)
            else:
                for key, value in kpi_messages(run_id, tick):
                    await self.publish(self.kpi_topic, key, value)

    def process(
        self, records: Sequence[Record], *, flush: bool = False
    ) -> tuple[list[store.Op], list[DeadLetter], list[TickResult]]:
        """The synchronous part: fold ``records`` and build the DuckDB operations."""
        return self.settle(self.take(records), flush=flush)

    def take(self, records: Sequence[Record]) -> list[DeadLetter]:
        """Decode and buffer ``records``; the ones that failed validation."""
        self.stats.last_record = time.monotonic()
        self.stats.records += len(records)
        return self.pipeline.ingest(records)

    def settle(
        self, dead: list[DeadLetter], *, flush: bool = False
    ) -> tuple[list[store.Op], list[DeadLetter], list[TickResult]]:
        """Close the ticks the watermark passed (all, with ``flush``) and build the DuckDB
        operations for them and for ``dead``."""
        ticks = self.pipeline.advance()
        if flush:
            ticks += self.pipeline.flush()
        ops: list[store.Op] = []
        if dead:
            self.stats.dead_letters += len(dead)
            rows = [(d.record.topic, d.record.partition, d.record.offset, d.reason, d.record.value)
                    for d in dead]
            ops.append(store.deadletter_op(self.config.run_id, rows))
        if ticks:
            self.stats.ticks += len(ticks)
            if not self.config.partial:  # partials land through `twin merge`
                ops.append(store.tick_op(self.config.run_id, ticks))
            self._ticks_since_snapshot += len(ticks)
            if self._ticks_since_snapshot >= self.config.snapshot_every:
                ops.append(self._snapshot_op())
        return ops, dead, ticks

    def flush(self) -> list[TickResult]:
        """End of a finite input: fold and close everything buffered, then snapshot."""
        ops, _, ticks = self.process([], flush=True)
        for op in ops:
            self._writes.append(self.writer.submit(op))
        return ticks

    def _snapshot_op(self) -> store.Op:
        self.snapshot_id += 1
        self._ticks_since_snapshot = 0
        self.stats.snapshots += 1
        st = self.state
        return store.snapshot_op(
            self.config.run_id,
            self.snapshot_id,
            st,
            self.pipeline.resume_offsets(),
            state_checksum(st),
            per_gpu=self.config.per_gpu_snapshot,
        )


def _config_dict(cfg: WorkerConfig) -> dict[str, Any]:
    return {name: getattr(cfg, name) for name in cfg.__dataclass_fields__}


def write_stop_file(path: Path, offsets: dict[tuple[str, int], int]) -> None:
    """Tell workers started with ``--stop-file`` where the input ends (written atomically)."""
    rows = [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(offsets.items())]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows))
    tmp.replace(path)


def read_stop_file(path: Path) -> dict[tuple[str, int], int] | None:
    """The end offsets a feeder wrote with :func:`write_stop_file` (None: not there yet)."""
    try:
        rows = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return {(str(r["topic"]), int(r["partition"])): int(r["offset"]) for r in rows}
