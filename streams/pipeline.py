"""From raw Kafka records to closed ticks: decode, dead-letter, order by event time, fold.

The Faust agents and offline replay (``twin replay``) feed the same :class:`Pipeline`, so a replay
gives the numbers of the live run.

Ordering rule (what makes the fold deterministic whatever the interleaving of partitions):

- ``facility.gpu`` is the facility's clock. The *watermark* is the smallest, over the telemetry
  partitions this worker has seen, of the largest event time seen on each.
- A record's tick is decided by :func:`twin.reducers.tick_time`: its event time, or for a
  reading that stands for an interval ending at ``ts_ns`` (telemetry, meters), the interval's
  start. A telemetry partition's clock is the end (``ts_ns``) of the first reading of the
  latest record it delivered (a JSON record has one reading; a binary one the K readings of
  an exporter's window): exporters push in time order, so every interval that ended by then
  is in, from every rack of the partition.
- Records wait in a buffer until the watermark passes the end of the open tick plus
  ``lateness_ns``. Then every buffered record of that tick is folded: first the low-volume
  events sorted by (event time, topic, source, seq), then the telemetry messages in arrival
  order (a rack's messages always share a partition, so each GPU's samples keep log order), and
  the tick is closed. Records of later ticks stay buffered.
- Partitions a restarted worker knows from its snapshot (or that Kafka assigned) are waited for
  from the start; one that delivers nothing holds ticks back by at most ``silent_grace_ns``,
  unless it is known to have a backlog (``set_backlog``): then ticks wait for its first record
  (a record of binary telemetry spans K seconds, so the other partitions can otherwise run a
  grace period ahead within a few records of a replay).
- A low-volume partition that had a backlog when reading started holds the watermark at its own
  latest event time until it has been read to that end (``set_backlog``), so replaying a log
  gives the same ticks however the partitions are interleaved.
- A record whose tick was already closed is *late*: it is folded into the open tick and counted
  (``late`` in the tick's counters). Ticks with no record in them are skipped, as
  :func:`twin.ticks.fold_events` does.

Scale-out: a worker started with ``--partial`` learns its telemetry partitions from the consumer
group (:meth:`Pipeline.assign`); its watermark waits for exactly those, and its ticks cover the
racks they carry (:mod:`streams.ownership`), merged with the other workers' (docs/SCALE-OUT.md).

Offsets: :meth:`Pipeline.resume_offsets` gives, per partition, the first offset not yet folded
(the oldest buffered record, else the next one to read). A snapshot stores it; recovery seeks
there, and the per-source ``seq`` high-water marks make re-delivered records no-ops. A partition
positioned at a known offset (``known_offsets``) is read from exactly that offset: records a
consumer still delivers from before its seek are skipped, so they cannot jump ahead of the tail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from schemas.codec import decode
from schemas.core_events import to_core
from schemas.errors import EventError
from schemas.hotpath import decode_telemetry
from schemas.topics import (
    TOPIC_COOLING,
    TOPIC_EVENT_TYPES,
    TOPIC_GPU,
    TOPIC_JOBS,
    TOPIC_LEASES,
    TOPIC_NETWORK,
    TOPIC_POWER,
    TOPIC_TOPOLOGY,
)
from streams.ownership import RackOwnership
from twin import batches
from twin.batches import TelemetryBatch
from twin.reducers import open_tick, telemetry_tick_times, tick_time
from twin.results import TickResult
from twin.state import TwinState
from twin.ticks import close_tick, fold_events

__all__ = [
    "CLOCK_TOPIC",
    "INPUT_TOPICS",
    "TOPIC_RANK",
    "DeadLetter",
    "Pipeline",
    "Record",
    "TopicPartition",
]

CLOCK_TOPIC = TOPIC_GPU
#: Tie-break between low-volume events with the same event time: topology before leases before
#: jobs (a job needs its GPUs installed), facility readings last.
TOPIC_RANK: tuple[str, ...] = (
    TOPIC_TOPOLOGY,
    TOPIC_LEASES,
    TOPIC_NETWORK,
    TOPIC_JOBS,
    TOPIC_POWER,
    TOPIC_COOLING,
)
#: Every input topic: the telemetry clock first, then the low-volume ones.
INPUT_TOPICS: tuple[str, ...] = (CLOCK_TOPIC, *TOPIC_RANK)
TopicPartition = tuple[str, int]
I64 = npt.NDArray[np.int64]
#: Telemetry records decoded at a time: binary K=10 decodes at 13.4 M samples/s in slices of 250
#: records and 7.2 M/s in slices of 2,000 (the temporaries leave the cache; bench/RESULTS.md)
DECODE_RECORDS = 256


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as the pipeline needs it (transport-neutral)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that failed validation, with the reason (names the field and the rule)."""

    record: Record
    reason: str


@dataclass(slots=True)
class _Telemetry:
    """Buffered telemetry messages: a batch plus each message's partition and offset."""

    batch: TelemetryBatch
    partition: npt.NDArray[np.int32]
    offset: I64


@dataclass(slots=True)
class _Control:
    tick_ns: int  # the event time that decides its tick (twin.reducers.tick_time)
    sort_key: tuple[int, int, str, int]
    tp: TopicPartition
    offset: int
    event: batches.Event


@dataclass(slots=True)
class _Stats:
    records: int = 0
    samples: int = 0
    dead_letters: int = 0
    ticks: int = 0
    skipped: int = 0  # records from before a seek took effect (re-delivered in order later)
    by_topic: dict[str, int] = field(default_factory=dict)


def take_messages(batch: TelemetryBatch, idx: npt.NDArray[np.intp]) -> TelemetryBatch:
    """A new batch holding messages ``idx`` of ``batch`` (in that order), rows included."""
    off = batch.row_offsets
    lens = (off[idx + 1] - off[idx]).astype(np.int64)
    new_off = np.zeros(idx.size + 1, np.int64)
    np.cumsum(lens, out=new_off[1:])
    # row indices: for each message its arange(start, end), vectorized
    rows = np.repeat(off[idx] - new_off[:-1], lens) + np.arange(int(new_off[-1]))
    return TelemetryBatch(
        source_ids=batch.source_ids,
        source_code=batch.source_code[idx],
        seq=batch.seq[idx],
        ts_ns=batch.ts_ns[idx],
        interval_ns=batch.interval_ns[idx],
        row_offsets=new_off,
        gpu_index=batch.gpu_index[rows],
        power_w=batch.power_w[rows],
        temp_c=batch.temp_c[rows],
        memory_temp_c=batch.memory_temp_c[rows],
        sm_clock_mhz=batch.sm_clock_mhz[rows],
        gpu_util_pct=batch.gpu_util_pct[rows],
        sm_active=batch.sm_active[rows],
        tensor_active=batch.tensor_active[rows],
        dram_active=batch.dram_active[rows],
        nvlink_bytes=batch.nvlink_bytes[rows],
        xid=batch.xid[rows],
        job_ids=batch.job_ids,
        job_code=batch.job_code[rows],
    )


class Pipeline:
    """Decode, dead-letter, order by event time and fold records into a :class:`TwinState`."""

    def __init__(
        self,
        state: TwinState,
        *,
        lateness_ns: int = 1_000_000_000,
        silent_grace_ns: int = 60_000_000_000,
        known_offsets: Mapping[TopicPartition, int] | None = None,
        backlog_ends: Mapping[TopicPartition, int] | None = None,
        topic_rank: Sequence[str] = TOPIC_RANK,
    ) -> None:
        if lateness_ns < 0 or silent_grace_ns < 0:
            raise ValueError("lateness_ns and silent_grace_ns must be >= 0")
        self.state = state
        self.lateness_ns = int(lateness_ns)
        self.silent_grace_ns = int(silent_grace_ns)
        self._rank = {t: k for k, t in enumerate(topic_rank)}
        self._tel: list[_Telemetry] = []
        self._ctl: list[_Control] = []
        self._clock: dict[int, int] = {}  # telemetry partition -> max event time seen
        self._next: dict[TopicPartition, int] = {}  # next offset to read per partition
        self.stats = _Stats()
        self._ctl_clock: dict[TopicPartition, int] = {}  # low-volume partition -> max time
        self._backlog: dict[TopicPartition, int] = {}  # low-volume partition -> end at start
        self._tel_backlog: dict[int, int] = {}  # telemetry partition -> its known end
        #: partitions positioned at a known offset: records are taken from exactly there on
        self._sync: dict[TopicPartition, int] = {}
        #: the racks this worker owns when several workers share the telemetry (None: all)
        self.ownership: RackOwnership | None = None
        if known_offsets:
            self._next.update(known_offsets)
            self._sync.update(known_offsets)
            self.expect(p for (t, p) in known_offsets if t == CLOCK_TOPIC)
        if backlog_ends:
            self.set_backlog(backlog_ends)

    def set_backlog(self, ends: Mapping[TopicPartition, int]) -> None:
        """End offsets of input partitions (when reading started, and the broker's high-water
        marks as reading goes on). While a low-volume partition has not been read up to its
        end, the watermark waits for it, so a lagging ``facility.topology`` or
        ``facility.jobs`` partition cannot make its events late. Telemetry partitions with a
        backlog are expected as well."""
        for (topic, p), end in ends.items():
            if end <= self._next.get((topic, p), 0):
                continue
            if topic == CLOCK_TOPIC:
                self.expect((p,))
                self._tel_backlog[int(p)] = max(int(end), self._tel_backlog.get(int(p), 0))
            elif end > self._backlog.get((topic, p), -1):
                self._backlog[(topic, p)] = int(end)

    def expect(self, partitions: Iterable[int]) -> None:
        """Telemetry partitions that will deliver: the watermark waits for each of them (a
        restarted worker's partitions, or the ones Kafka assigned). A partition that stays
        silent holds ticks back by at most ``silent_grace_ns`` of event time."""
        for p in partitions:
            self._clock.setdefault(int(p), -1)

    def assign(self, partitions: Iterable[int], total: int, *, partial: bool = True) -> None:
        """The telemetry partitions this worker holds now, of ``total`` (a consumer group's
        assignment).

        ``partial`` (a scale-out worker): the watermark waits for exactly these, and ticks are
        closed over the racks whose telemetry they carry (:mod:`streams.ownership`; every
        rack when they are all of them). Otherwise the worker stands for the whole facility:
        these partitions are expected as well, and none is given up (a restarted worker can
        briefly share the group with its dead predecessor's session)."""
        held = {int(p) for p in partitions}
        if not partial:
            self.expect(held)
            return
        for p in list(self._clock):
            if p not in held:
                del self._clock[p]
        self.expect(held)
        ownership = RackOwnership(total, held)
        self.ownership = None if ownership.whole else ownership

    def owned_racks(self) -> npt.NDArray[np.bool_] | None:
        """Mask of the racks this worker owns (None: all)."""
        if self.ownership is None:
            return None
        st = self.state
        return self.ownership.mask(st.rack_ids[: st.n["rack"]])

    # ------------------------------------------------------------------------------ input
    def ingest(self, records: Sequence[Record]) -> list[DeadLetter]:
        """Decode and buffer ``records``; return the ones that failed validation."""
        dead: list[DeadLetter] = []
        telemetry: list[Record] = []
        for rec in records:
            tp = (rec.topic, rec.partition)
            want = self._sync.get(tp)
            if want is not None:
                # After a seek, a consumer may still hand over records fetched from its old
                # position: skip them until the partition continues at exactly ``want``
                # (earlier ones are folded already, later ones will come again).
                if rec.offset != want:
                    self.stats.skipped += 1
                    continue
                del self._sync[tp]
            if rec.offset + 1 > self._next.get(tp, -1):
                self._next[tp] = rec.offset + 1
            self.stats.by_topic[rec.topic] = self.stats.by_topic.get(rec.topic, 0) + 1
            if rec.topic == CLOCK_TOPIC:
                telemetry.append(rec)
                continue
            expect = TOPIC_EVENT_TYPES.get(rec.topic)
            if expect is None:
                dead.append(DeadLetter(rec, f"topic: {rec.topic!r} is not an input topic"))
                continue
            try:
                event = to_core(decode(rec.value, expect))
            except EventError as exc:
                dead.append(DeadLetter(rec, exc.reason))
                continue
            at = tick_time(event)
            key = (at, self._rank.get(rec.topic, 99), event.source_id, event.seq)
            self._ctl.append(_Control(at, key, tp, rec.offset, event))
            if at > self._ctl_clock.get(tp, -1):
                self._ctl_clock[tp] = at
        # decoded a slice at a time: the decoder's temporaries of ~256 records stay in cache
        # (a fetch of 2,000 binary records decodes at half the rate in one piece)
        for k in range(0, len(telemetry), DECODE_RECORDS):
            dead.extend(self._ingest_telemetry(telemetry[k : k + DECODE_RECORDS]))
        self.stats.records += len(records)
        self.stats.dead_letters += len(dead)
        return dead

    def _ingest_telemetry(self, recs: list[Record]) -> list[DeadLetter]:
        decoded = decode_telemetry([r.value for r in recs])
        dead = [DeadLetter(recs[i], reason) for i, reason in decoded.errors]
        batch = decoded.batch
        if not batch.n_messages:
            return dead
        # per batch message (a binary record with K readings gives K), its record's place
        part = np.fromiter((r.partition for r in recs), np.int32, len(recs))[decoded.inputs]
        offs = np.fromiter((r.offset for r in recs), np.int64, len(recs))[decoded.inputs]
        self._tel.append(_Telemetry(batch, part, offs))
        self.stats.samples += batch.n_samples
        # advance each partition's clock: per partition (few), the latest end of a record's
        # first reading. Exporters push their readings in time order, a binary record the K
        # readings of its window once the window is over, so a partition that delivered a
        # record whose first reading ends at t delivered every reading that ended by t (from
        # any rack); a later reading of the same record does not say that of the other racks.
        first = np.ones(batch.n_messages, np.bool_)
        first[1:] = decoded.inputs[1:] != decoded.inputs[:-1]
        first_part = part[first]
        first_ts = batch.ts_ns[first]
        for p in np.unique(first_part).tolist():
            t = int(first_ts[first_part == p].max())
            if t > self._clock.get(p, -1):
                self._clock[p] = t
        return dead

    # ----------------------------------------------------------------------------- output
    @property
    def watermark_ns(self) -> int | None:
        """Smallest per-partition event time of the telemetry seen so far (None before any).

        While an expected partition has delivered nothing, the watermark stays
        ``silent_grace_ns`` behind the others (an empty partition cannot stall the twin)."""
        seen = [c for c in self._clock.values() if c >= 0]
        if not seen:
            return None
        wm = min(seen)
        if len(seen) < len(self._clock):
            for p, end in self._tel_backlog.items():
                if self._clock.get(p) == -1 and self._next.get((CLOCK_TOPIC, p), 0) < end:
                    return None  # a partition with a backlog has delivered nothing yet
            wm -= self.silent_grace_ns
        for tp, end in self._backlog.items():
            if self._next.get(tp, 0) < end:  # still behind: wait for its events
                wm = min(wm, self._ctl_clock.get(tp, -1))
        return wm if wm >= 0 else None

    def may_close(self) -> bool:
        """True when :meth:`advance` may close a tick now: no tick is open yet and records are
        pending, or the watermark passed the open tick's end plus the lateness."""
        wm = self.watermark_ns
        if wm is None:
            return False
        st = self.state
        if st.tick_start_ns < 0:
            return self._oldest_pending() is not None
        return wm >= st.tick_end_ns + self.lateness_ns

    def advance(self) -> list[TickResult]:
        """Fold and close every tick the watermark has passed (plus lateness)."""
        closed: list[TickResult] = []
        while True:
            wm = self.watermark_ns
            oldest = self._oldest_pending()
            if wm is None or oldest is None:
                break
            st = self.state
            if st.tick_start_ns < 0 or (
                oldest >= st.tick_end_ns and not self._tick_has_folds()
            ):
                # no tick open yet, or an empty one: align to the oldest pending record
                open_tick(st, oldest)
            end = st.tick_end_ns
            if wm < end + self.lateness_ns:
                break
            self._fold_before(end)
            closed.append(close_tick(st, racks=self.owned_racks()))
            self.stats.ticks += 1
        return closed

    def flush(self) -> list[TickResult]:
        """End of input (replay, shutdown of a finite run): fold and close everything buffered."""
        closed: list[TickResult] = []
        while (oldest := self._oldest_pending()) is not None:
            st = self.state
            if st.tick_start_ns < 0 or (
                oldest >= st.tick_end_ns and not self._tick_has_folds()
            ):
                open_tick(st, oldest)
            self._fold_before(st.tick_end_ns)
            closed.append(close_tick(st, racks=self.owned_racks()))
            self.stats.ticks += 1
        return closed

    def resume_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the first offset whose record is not folded into the state yet."""
        out = dict(self._next)
        for c in self._ctl:
            out[c.tp] = min(out[c.tp], c.offset)
        for t in self._tel:
            for p in np.unique(t.partition).tolist():
                tp = (CLOCK_TOPIC, int(p))
                low = int(t.offset[t.partition == p].min())
                out[tp] = min(out[tp], low)
        return out

    @property
    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset after the last record handed to :meth:`ingest`."""
        return dict(self._next)

    @property
    def unsynced(self) -> dict[TopicPartition, int]:
        """Partitions still waiting for the record at their known offset."""
        return dict(self._sync)

    @property
    def pending(self) -> int:
        """Buffered records not folded yet."""
        return len(self._ctl) + sum(t.batch.n_messages for t in self._tel)

    # ---------------------------------------------------------------------------- internals
    def _tick_has_folds(self) -> bool:
        """True when the open tick already holds folded events (so it must be closed)."""
        return bool(self.state.tick_counts.any())

    def _oldest_pending(self) -> int | None:
        times = [c.tick_ns for c in self._ctl]
        times.extend(
            int(telemetry_tick_times(t.batch).min()) for t in self._tel if t.batch.n_messages
        )
        return min(times) if times else None

    def _fold_before(self, end_ns: int) -> None:
        """Fold every buffered record with event time < ``end_ns`` in the canonical order."""
        due = sorted((c for c in self._ctl if c.tick_ns < end_ns), key=lambda c: c.sort_key)
        self._ctl = [c for c in self._ctl if c.tick_ns >= end_ns]
        todo: list[batches.Batch] = []
        if due:
            todo.append([c.event for c in due])
        keep: list[_Telemetry] = []
        for t in self._tel:
            now = telemetry_tick_times(t.batch) < end_ns
            if now.all():
                todo.append(t.batch)
            elif now.any():
                todo.append(take_messages(t.batch, np.flatnonzero(now)))
                rest = np.flatnonzero(~now)
                later = take_messages(t.batch, rest)
                keep.append(_Telemetry(later, t.partition[rest], t.offset[rest]))
            else:
                keep.append(t)
        self._tel = keep
        # every record here is before the open tick's end, so fold_events closes nothing
        leftover = fold_events(self.state, todo)
        assert not leftover, "records past the open tick reached the fold"
