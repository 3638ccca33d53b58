"""The simulator's records honour docs/EVENTS.md: they validate with the schemas, go to the right
topic under the right key, and every source's sequence numbers run 0, 1, 2, ..."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import orjson
import pytest

from schemas.codec import decode
from schemas.topics import EVENT_TOPIC
from sim.records import EVENT_TOPICS, FACILITY_GPU
from sim.run import MemorySink, RunResult, simulate
from sim.scenario import load_scenario, scenario_from_dict
from tests.unit.sim_scenarios import leased_small


@pytest.fixture(scope="module")
def leased_run() -> tuple[RunResult, MemorySink]:
    sink = MemorySink()
    result = simulate(scenario_from_dict(leased_small()), 45.0, sink=sink)
    return result, sink


@pytest.fixture(scope="module")
def small_run() -> tuple[RunResult, MemorySink]:
    sink = MemorySink()
    return simulate(load_scenario("small"), 20.0, sink=sink), sink


def test_every_event_type_is_emitted(leased_run: tuple[RunResult, MemorySink]) -> None:
    _, sink = leased_run
    kinds = Counter(orjson.loads(v)["event_type"] for _, _, v in sink.records)
    assert set(kinds) == set(EVENT_TOPICS), set(EVENT_TOPICS) - set(kinds)


def test_topics_match_the_contract() -> None:
    assert dict(EVENT_TOPICS) == dict(EVENT_TOPIC)


def test_a_sample_of_events_validates(leased_run: tuple[RunResult, MemorySink]) -> None:
    _, sink = leased_run
    by_kind: dict[str, list[bytes]] = defaultdict(list)
    for _, _, value in sink.records:
        by_kind[orjson.loads(value)["event_type"]].append(value)
    rng = np.random.default_rng(0)
    checked = 0
    for kind, values in by_kind.items():
        picks = rng.choice(len(values), size=min(25, len(values)), replace=False)
        for i in picks.tolist():
            event = decode(values[i])
            assert event.event_type == kind
            checked += 1
    assert checked > 150


def test_records_go_to_their_topic_and_key(leased_run: tuple[RunResult, MemorySink]) -> None:
    _, sink = leased_run
    for topic, key, value in sink.records:
        doc = orjson.loads(value)
        assert topic == EVENT_TOPICS[doc["event_type"]]
        if topic == FACILITY_GPU:
            assert key == doc["rack_id"].encode()
        elif doc["event_type"].startswith("job_"):
            assert key == doc["job_id"].encode()
        elif doc["event_type"].startswith("lease_"):
            assert key == doc["lease_id"].encode()


def test_each_source_counts_from_zero_in_one_key(leased_run: tuple[RunResult, MemorySink]) -> None:
    _, sink = leased_run
    seqs: dict[str, list[int]] = defaultdict(list)
    keys: dict[str, set[tuple[str, bytes]]] = defaultdict(set)
    for topic, key, value in sink.records:
        doc = orjson.loads(value)
        seqs[doc["source_id"]].append(doc["seq"])
        keys[doc["source_id"]].add((topic, key))
    for source, seq in seqs.items():
        assert seq == list(range(len(seq))), source
        assert len({k for _, k in keys[source]}) == 1, source


def test_telemetry_shape(small_run: tuple[RunResult, MemorySink]) -> None:
    result, sink = small_run
    sim = result.simulator
    telemetry = [orjson.loads(v) for t, _, v in sink.records if t == FACILITY_GPU]
    assert len(telemetry) == sim.topo.n_racks * 20
    first = [d for d in telemetry if d["seq"] == 0]
    assert sum(len(d["gpu_index"]) for d in first) == sim.topo.n_gpus
    assert {d["ts_ns"] for d in first} == {sim.epoch_ns + 1_000_000_000}
    for d in first:
        n = len(d["gpu_index"])
        assert all(len(d[c]) == n for c in ("power_w", "sm_active", "job_slot", "gpu_uuid"))
        assert max(d["job_slot"]) < len(d["jobs"])
    rack_installed = [
        orjson.loads(v)
        for t, _, v in sink.records
        if orjson.loads(v)["event_type"] == "rack_installed"
    ]
    assert len(rack_installed) == sim.topo.n_racks
    assert rack_installed[0]["gpu_uuid"][0] == first[0]["gpu_uuid"][0]


def test_job_steps_end_at_their_timestamp(leased_run: tuple[RunResult, MemorySink]) -> None:
    _, sink = leased_run
    steps = [
        orjson.loads(v) for _, _, v in sink.records if orjson.loads(v)["event_type"] == "job_step"
    ]
    assert steps
    by_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        assert 0 <= s["exposed_comm_s"] <= s["duration_s"]
        by_job[s["job_id"]].append(s)
    for job_steps in by_job.values():
        ts = [s["ts_ns"] for s in job_steps]
        assert ts == sorted(ts)


def test_sm_active_tracks_the_true_compute_fraction(
    small_run: tuple[RunResult, MemorySink],
) -> None:
    """The twin's estimator input: mean sm_active over a tick is the truth's compute fraction
    plus small seeded noise."""
    result, sink = small_run
    sums = np.zeros(2)
    count = 0
    for topic, _, value in sink.records:
        if topic != FACILITY_GPU:
            continue
        d = orjson.loads(value)
        if d["ts_ns"] <= result.simulator.epoch_ns + 10 * 10**9:
            sums[0] += sum(d["sm_active"])
            count += len(d["sm_active"])
    truth = result.truth.select("facility").columns["compute"][0]
    assert sums[0] / count == pytest.approx(truth, abs=0.01)


def test_lease_events_follow_the_notice(leased_run: tuple[RunResult, MemorySink]) -> None:
    result, sink = leased_run
    docs = [orjson.loads(v) for t, _, v in sink.records if t == "facility.leases"]
    kinds = [(d["event_type"], d["lease_id"]) for d in docs]
    assert ("lease_signed", "lease-a") in kinds
    assert ("lease_signed", "lease-b") in kinds
    assert kinds.index(("lease_notice", "lease-a")) < kinds.index(("lease_ended", "lease-a"))
    assert ("lease_ended", "lease-b") not in kinds
    signed = next(d for d in docs if d["lease_id"] == "lease-a")
    assert len(signed["gpu_indices"]) == 1024 + 144
    tenants = {t.tenant: t for t in result.summary.tenants}
    per_s = 1.0 / (730 * 3600)
    assert tenants["beta"].revenue_usd == pytest.approx(6.0e6 * 40 * per_s)  # truth ticks: 40 s
    assert tenants["acme"].revenue_usd == pytest.approx(9.0e6 * 20 * per_s)  # ended at 20 s
