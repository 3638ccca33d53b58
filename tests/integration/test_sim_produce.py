"""Produce the small scenario to the session's real broker and read every record back."""

from __future__ import annotations

from collections import defaultdict

import pytest
from kafka import KafkaConsumer, TopicPartition

from sim.producer import KafkaSink
from sim.records import SIM_TOPICS
from sim.run import MemorySink, simulate
from sim.scenario import load_scenario
from streams.settings import Settings
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration


def _end_offsets(consumer: KafkaConsumer, parts: list[TopicPartition]) -> dict[TopicPartition, int]:
    return dict(consumer.end_offsets(parts))


def test_small_scenario_round_trip(broker_settings: Settings, kafka_bootstrap: str) -> None:
    counts = ensure_topics(broker_settings, bootstrap=kafka_bootstrap)
    consumer = KafkaConsumer(
        **broker_settings.kafka_python_kwargs(kafka_bootstrap),
        enable_auto_commit=False,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
    )
    parts = [TopicPartition(t, p) for t in SIM_TOPICS for p in range(counts[t])]
    try:
        before = _end_offsets(consumer, parts)
        with KafkaSink(broker_settings.kafka_python_kwargs(kafka_bootstrap)) as sink:
            result = simulate(load_scenario("small"), 3.0, sink=sink)
        after = _end_offsets(consumer, parts)
        expected = MemorySink()
        simulate(load_scenario("small"), 3.0, sink=expected)
        assert sum(after[p] - before[p] for p in parts) == result.stats.records

        consumer.assign(parts)
        for p in parts:
            consumer.seek(p, before[p])
        got: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
        remaining = result.stats.records
        while remaining > 0:
            batch = consumer.poll(timeout_ms=5000)
            assert batch, f"{remaining} records never arrived"
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset < after[tp]:
                        got[(tp.topic, m.key)].append(m.value)
                        remaining -= 1
    finally:
        consumer.close()

    want: dict[tuple[str, bytes], list[bytes]] = defaultdict(list)
    for topic, key, value in expected.records:
        want[(topic, key)].append(value)
    assert got == want  # same bytes, and in order per key (one key -> one partition)
    racks = {key for topic, key in got if topic == "facility.gpu"}
    assert len(racks) == result.simulator.topo.n_racks
