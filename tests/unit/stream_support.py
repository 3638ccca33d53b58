"""Simulated Kafka records for the pipeline tests: the small scenario, partitioned and numbered
the way a producer with Kafka's default partitioner and a fresh broker would."""

from __future__ import annotations

from functools import cache

from kafka.partitioner.default import murmur2

from sim.run import MemorySink, simulate
from sim.scenario import load_scenario
from streams.pipeline import Record
from streams.topics import DEFAULT_PARTITIONS

__all__ = ["simulated_records"]


@cache
def simulated_records(seconds: float, readings: int = 0) -> tuple[Record, ...]:
    """The small scenario's records; ``readings`` > 0: binary telemetry with that many
    readings per message (0: JSON)."""
    sink = MemorySink()
    tel = {"format": "binary", "readings_per_message": readings} if readings else {}
    simulate(load_scenario("small", {"telemetry": tel}), seconds, sink=sink)
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for topic, key, value in sink.records:
        n = DEFAULT_PARTITIONS[topic]
        p = (murmur2(key) & 0x7FFFFFFF) % n if key else 0
        o = offsets.get((topic, p), 0)
        offsets[(topic, p)] = o + 1
        out.append(Record(topic, p, o, key, value))
    return tuple(out)
