"""The event-time pipeline without Kafka: interleaving invariance, dead letters, recovery from a
snapshot plus a replay from its offsets (the same logic the worker runs against the broker)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from schemas.binary import MAGIC
from streams.pipeline import Pipeline, Record
from tests.unit.stream_support import simulated_records
from twin.checksum import state_checksum
from twin.state import TwinState


def _records(seconds: float = 120.0, readings: int = 0) -> tuple[Record, ...]:
    return simulated_records(seconds, readings)


def _interleave(records: list[Record], seed: int) -> list[Record]:
    """Another arrival order that keeps each partition's order (what Kafka guarantees)."""
    rng = np.random.default_rng(seed)
    queues: list[list[Record]] = []
    index: dict[tuple[str, int], int] = {}
    for r in records:
        k = index.setdefault((r.topic, r.partition), len(queues))
        if k == len(queues):
            queues.append([])
        queues[k].append(r)
    out: list[Record] = []
    while queues:
        k = int(rng.integers(len(queues)))
        n = int(rng.integers(1, 80))
        out.extend(queues[k][:n])
        del queues[k][:n]
        if not queues[k]:
            queues.pop(k)
    return out


def _ends(records: list[Record]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for r in records:
        out[(r.topic, r.partition)] = max(out.get((r.topic, r.partition), 0), r.offset + 1)
    return out


def _run(pipeline: Pipeline, records: list[Record], chunk: int) -> list[int]:
    ends = []
    for i in range(0, len(records), chunk):
        assert not pipeline.ingest(records[i : i + chunk])
        ends += [t.end_ns for t in pipeline.advance()]
    ends += [t.end_ns for t in pipeline.flush()]
    return ends


def test_state_does_not_depend_on_partition_interleaving_or_batch_size() -> None:
    recs = list(_records())
    base = Pipeline(TwinState())
    base_ticks = _run(base, recs, 500)
    for seed, chunk in ((1, 37), (2, 3000), (3, 5)):
        other = Pipeline(TwinState(), backlog_ends=_ends(recs))
        assert _run(other, _interleave(recs, seed), chunk) == base_ticks
        assert state_checksum(other.state) == state_checksum(base.state)


def test_malformed_records_are_dead_lettered_with_a_reason_and_the_rest_folds() -> None:
    recs = list(_records(30.0))
    bad = [
        Record("facility.gpu", 0, 10_000, b"k", b"{not json"),
        Record("facility.jobs", 0, 10_000, b"k", b'{"event_type": "job_step"}'),
        Record("facility.nope", 0, 0, None, b"{}"),
    ]
    pipeline = Pipeline(TwinState())
    dead = pipeline.ingest(recs[:100] + bad + recs[100:])
    by_topic = {d.record.topic: d for d in dead}
    assert sorted(by_topic) == sorted(r.topic for r in bad)
    assert all(d.reason for d in dead)
    assert "schema_version" in by_topic["facility.jobs"].reason
    pipeline.advance()
    pipeline.flush()
    clean = Pipeline(TwinState())
    _run(clean, recs, 10_000)
    assert state_checksum(pipeline.state) == state_checksum(clean.state)


def test_binary_multi_reading_telemetry_folds_like_json_in_any_interleaving() -> None:
    """K readings per binary message (K = 7 does not divide the ticks, so messages straddle
    tick ends) fold to the state of one JSON message per reading; live == offline replay."""
    base = Pipeline(TwinState())
    base_ticks = _run(base, list(_records()), 500)
    for readings, seed, chunk in ((1, 11, 300), (7, 12, 37), (7, 13, 2000), (10, 14, 3)):
        recs = list(_records(120.0, readings))
        gpu = [r for r in recs if r.topic == "facility.gpu"]
        assert all(r.value and r.value.startswith(MAGIC) for r in gpu)
        racks = sum(r.topic == "facility.gpu" for r in _records()) // 120
        assert len(gpu) == -(-120 // readings) * racks  # the last message may be shorter
        other = Pipeline(TwinState(), backlog_ends=_ends(recs))
        assert _run(other, _interleave(recs, seed), chunk) == base_ticks
        assert state_checksum(other.state) == state_checksum(base.state)
        assert other.stats.samples == base.stats.samples


@pytest.mark.parametrize(
    ("crash_at", "seed", "readings"),
    [(0.5, 4, 0), (0.65, 5, 0), (0.8, 6, 0), (0.9, 7, 0), (0.75, 8, 7), (0.9, 9, 7)],
)
def test_snapshot_then_replay_from_its_offsets_equals_the_uninterrupted_run(
    crash_at: float, seed: int, readings: int
) -> None:
    recs = _interleave(list(_records(120.0, readings)), seed)
    reference = Pipeline(TwinState())
    ref_ticks = _run(reference, list(_records()), 700)

    # run until the crash, taking a snapshot whenever ticks close (as the worker does)
    live = Pipeline(TwinState(), backlog_ends=_ends(recs))
    snapshot: tuple[bytes, dict[tuple[str, int], int], list[int]] | None = None
    closed: list[int] = []
    cut = int(len(recs) * crash_at)
    for i in range(0, cut, 200):
        live.ingest(recs[i : min(i + 200, cut)])
        ticks = live.advance()
        if ticks:
            closed += [t.end_ns for t in ticks]
            snapshot = (pickle.dumps(live.state), live.resume_offsets(), list(closed))
    assert snapshot is not None
    blob, offsets, done = snapshot

    # restart: newest snapshot, then every partition from its offset, in yet another order
    restored = Pipeline(pickle.loads(blob), known_offsets=offsets, backlog_ends=_ends(recs))
    tail = [r for r in _interleave(list(_records(120.0, readings)), seed + 100)
            if r.offset >= offsets.get((r.topic, r.partition), 0)]
    after = _run(restored, tail, 300)
    assert done + after == ref_ticks
    assert state_checksum(restored.state) == state_checksum(reference.state)


def test_slowest_generation_is_charged_for_the_waiting_on_simulated_data() -> None:
    """Mixed jobs give every GPU equal work: the GB200s wait for the H100/H200s, so straggler
    cost lands on H100/H200 racks, never on GB200 ones, and it is of the order of the waiting."""
    pipeline = Pipeline(TwinState())
    ticks = []
    recs = list(_records())
    for i in range(0, len(recs), 500):
        pipeline.ingest(recs[i : i + 500])
        ticks += pipeline.advance()
    ticks += pipeline.flush()
    cost = dict.fromkeys(("H100", "H200", "GB200"), 0.0)
    waited = 0.0
    for t in ticks:
        s = t.stragglers
        for g, c in zip(s.generation_ids, s.generation_cost_gpu_s, strict=True):
            cost[g] += float(c)
        fac = t.scope("facility")
        waited += float(fac.column("straggler_wait")[0] * fac.column("gpus")[0] * t.dt_s)
    assert cost["H100"] > 0
    assert cost["GB200"] == 0
    assert 0.2 * waited < sum(cost.values()) < 5 * waited
