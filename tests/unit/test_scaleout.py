"""Scale-out without Kafka: workers that fold every low-volume event but only their own telemetry
partitions, merged from their partials, give the facility figures of one worker."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from streams.merge import PartialsMerger
from streams.pipeline import CLOCK_TOPIC, Pipeline, Record
from streams.topics import DEFAULT_PARTITIONS
from streams.worker import partial_message
from tests.unit.stream_support import simulated_records
from twin.results import KPI_COLUMNS, TickResult
from twin.state import TwinState

TOTAL = DEFAULT_PARTITIONS[CLOCK_TOPIC]
#: exact under scale-out only when a job's GPUs are all on one worker (docs/SCALE-OUT.md)
STRAGGLER_COLUMNS = {"straggler_cost_gpu_s"}


def _records(seconds: float = 90.0) -> tuple[Record, ...]:
    return simulated_records(seconds)


def _run(records: list[Record], held: list[int] | None) -> list[TickResult]:
    """One worker: every low-volume record, the telemetry of ``held`` (None: all)."""
    pipeline = Pipeline(TwinState())
    if held is not None:
        pipeline.assign(held, TOTAL)
        records = [r for r in records if r.topic != CLOCK_TOPIC or r.partition in held]
    ticks: list[TickResult] = []
    for i in range(0, len(records), 700):
        assert not pipeline.ingest(records[i : i + 700])
        ticks += pipeline.advance()
    return ticks + pipeline.flush()


def _assert_same(merged: TickResult, whole: TickResult) -> None:
    assert (merged.start_ns, merged.end_ns) == (whole.start_ns, whole.end_ns)
    for scope, table in whole.scopes.items():
        got = merged.scopes[scope]
        assert set(got.ids) == set(table.ids), scope
        order = [got.ids.index(i) for i in table.ids]
        for k, name in enumerate(KPI_COLUMNS):
            if name in STRAGGLER_COLUMNS:
                continue
            np.testing.assert_allclose(
                got.columns[k, order], table.columns[k], rtol=1e-9, atol=1e-6,
                err_msg=f"{scope}.{name}",
            )
    assert merged.ledger.facility_j == pytest.approx(whole.ledger.facility_j, rel=1e-12)
    assert merged.ledger.residual_j == pytest.approx(0.0, abs=1e-3)
    assert merged.counts["samples"] == whole.counts["samples"]
    assert merged.counts["events"] == whole.counts["events"]


@pytest.mark.parametrize("split", [[[0, 1, 2, 3], [4, 5, 6, 7]], [[0, 3, 6], [1, 4, 7], [2, 5]]])
def test_partial_workers_merge_to_the_whole_facility(split: list[list[int]]) -> None:
    records = list(_records())
    whole = _run(records, None)
    parts = [_run(records, held) for held in split]
    assert all(len(p) == len(whole) for p in parts)
    merger = PartialsMerger("r")
    merged: list[TickResult] = []
    # arrival order: worker by worker, last worker first (order must not matter)
    for k in reversed(range(len(split))):
        for tick in parts[k]:
            _, value = partial_message("r", f"w{k}", tick, split[k], TOTAL)
            merged += merger.add(value)
    assert not merger.incomplete()
    assert merger.stats.merged == len(whole)
    by_end = {t.end_ns: t for t in merged}
    for tick in whole:
        _assert_same(by_end[tick.end_ns], tick)
    # each worker's share is a real share of the facility's GPUs
    full = whole[-1].kpi("facility", "facility", "gpus")
    shares = [p[-1].kpi("facility", "facility", "gpus") for p in parts]
    assert all(0 < g < full for g in shares)
    assert sum(shares) == pytest.approx(full)

def test_merger_drops_repeats_overlaps_and_other_runs() -> None:
    records = list(_records())
    a = _run(records, [0, 1, 2, 3])
    b = _run(records, [4, 5, 6, 7])
    merger = PartialsMerger("r")
    first_a = partial_message("r", "a", a[0], [0, 1, 2, 3], TOTAL)[1]
    assert merger.add(first_a) == []
    assert merger.add(first_a) == []  # a restarted worker sends it again
    assert merger.stats.duplicates == 1
    overlap = partial_message("r", "x", b[0], [3, 4, 5, 6, 7], TOTAL)[1]
    assert merger.add(overlap) == []  # would count partition 3 twice
    assert merger.stats.conflicts == 1
    assert merger.add(partial_message("other", "b", b[0], [4, 5, 6, 7], TOTAL)[1]) == []
    assert merger.stats.other_runs == 1
    assert merger.add(b"{not json") == []
    assert merger.add(orjson.dumps({"format": 99})) == []
    assert merger.stats.invalid == 2
    assert merger.incomplete() == [(a[0].end_ns, [4, 5, 6, 7])]
    done = merger.add(partial_message("r", "b", b[0], [4, 5, 6, 7], TOTAL)[1])
    assert [t.end_ns for t in done] == [a[0].end_ns]
    # the tick is landed: a late repeat of either partial is dropped
    assert merger.add(first_a) == []
    assert not merger.incomplete()


def test_a_worker_holding_every_partition_is_the_whole_facility() -> None:
    records = list(_records(40.0))
    whole = _run(records, None)
    same = _run(records, list(range(TOTAL)))
    for x, y in zip(same, whole, strict=True):
        np.testing.assert_array_equal(x.scopes["facility"].columns, y.scopes["facility"].columns)
