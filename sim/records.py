"""Kafka records the simulator emits: ``(topic, key, value)`` with JSON values per docs/EVENTS.md.

Every event carries the envelope (``event_type``, ``schema_version``, ``ts_ns``, ``source_id``,
``seq``). Each source id maps to exactly one partition key, so a consumer sees every source's
sequence numbers in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from schemas.topics import TOPIC_COOLING as FACILITY_COOLING
from schemas.topics import TOPIC_GPU as FACILITY_GPU
from schemas.topics import TOPIC_JOBS as FACILITY_JOBS
from schemas.topics import TOPIC_LEASES as FACILITY_LEASES
from schemas.topics import TOPIC_NETWORK as FACILITY_NETWORK
from schemas.topics import TOPIC_POWER as FACILITY_POWER
from schemas.topics import TOPIC_TOPOLOGY as FACILITY_TOPOLOGY

# topic names are defined once, with the event contracts, in schemas.topics
__all__ = [
    "EVENT_TOPICS",
    "FACILITY_COOLING",
    "FACILITY_GPU",
    "FACILITY_JOBS",
    "FACILITY_LEASES",
    "FACILITY_NETWORK",
    "FACILITY_POWER",
    "FACILITY_TOPOLOGY",
    "SIM_TOPICS",
    "EventWriter",
    "Record",
    "encode_event",
]

SIM_TOPICS: Final = (
    FACILITY_GPU,
    FACILITY_POWER,
    FACILITY_COOLING,
    FACILITY_JOBS,
    FACILITY_LEASES,
    FACILITY_TOPOLOGY,
    FACILITY_NETWORK,
)

EVENT_TOPICS: Final[Mapping[str, str]] = {
    "gpu_telemetry": FACILITY_GPU,
    "rack_power": FACILITY_POWER,
    "hall_power": FACILITY_POWER,
    "facility_power": FACILITY_POWER,
    "battery_state": FACILITY_POWER,
    "energy_price": FACILITY_POWER,
    "cdu_readings": FACILITY_COOLING,
    "plant_reading": FACILITY_COOLING,
    "job_submitted": FACILITY_JOBS,
    "job_started": FACILITY_JOBS,
    "job_step": FACILITY_JOBS,
    "job_checkpoint": FACILITY_JOBS,
    "job_failed": FACILITY_JOBS,
    "job_finished": FACILITY_JOBS,
    "lease_signed": FACILITY_LEASES,
    "lease_notice": FACILITY_LEASES,
    "lease_ended": FACILITY_LEASES,
    "rack_installed": FACILITY_TOPOLOGY,
    "gpu_status": FACILITY_TOPOLOGY,
    "link_state": FACILITY_NETWORK,
}

#: One Kafka record: topic, key, value (UTF-8 JSON).
Record = tuple[str, bytes, bytes]

_OPTS: Final = orjson.OPT_SERIALIZE_NUMPY


def encode_event(
    event_type: str, ts_ns: int, source_id: str, seq: int, fields: Mapping[str, Any]
) -> bytes:
    """The JSON value of one event (numpy arrays and scalars serialize natively)."""
    doc = {
        "event_type": event_type,
        "schema_version": 1,
        "ts_ns": ts_ns,
        "source_id": source_id,
        "seq": seq,
    }
    doc.update(fields)
    return orjson.dumps(doc, option=_OPTS)


class EventWriter:
    """Encodes low-volume events with per-source sequence numbers into a record list."""

    __slots__ = ("_seq", "records")

    def __init__(self) -> None:
        self._seq: dict[str, int] = {}
        self.records: list[Record] = []

    def next_seq(self, source_id: str) -> int:
        seq = self._seq.get(source_id, 0)
        self._seq[source_id] = seq + 1
        return seq

    def emit(
        self, event_type: str, ts_ns: int, key: str, source_id: str, fields: Mapping[str, Any]
    ) -> None:
        value = encode_event(event_type, ts_ns, source_id, self.next_seq(source_id), fields)
        self.records.append((EVENT_TOPICS[event_type], key.encode(), value))

    def drain(self) -> list[Record]:
        out, self.records = self.records, []
        return out
