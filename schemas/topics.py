"""Which event types travel on which Kafka topic (docs/EVENTS.md, "Topics and keys")."""

from __future__ import annotations

from typing import Final

from schemas.union import EVENT_MODELS

__all__ = [
    "DEADLETTER_TOPIC",
    "EVENT_TOPIC",
    "INPUT_TOPICS",
    "KPI_TOPIC",
    "PARTIALS_TOPIC",
    "TOPIC_COOLING",
    "TOPIC_EVENT_TYPES",
    "TOPIC_GPU",
    "TOPIC_JOBS",
    "TOPIC_LEASES",
    "TOPIC_NETWORK",
    "TOPIC_POWER",
    "TOPIC_TOPOLOGY",
]

TOPIC_GPU: Final = "facility.gpu"
TOPIC_POWER: Final = "facility.power"
TOPIC_COOLING: Final = "facility.cooling"
TOPIC_JOBS: Final = "facility.jobs"
TOPIC_LEASES: Final = "facility.leases"
TOPIC_TOPOLOGY: Final = "facility.topology"
TOPIC_NETWORK: Final = "facility.network"
KPI_TOPIC: Final = "twin.kpis"
DEADLETTER_TOPIC: Final = "twin.deadletter"
PARTIALS_TOPIC: Final = "twin.partials"  # scale-out: per-worker tick aggregates to merge

#: Input topic -> the event types it carries (and nothing else).
TOPIC_EVENT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    TOPIC_GPU: ("gpu_telemetry",),
    TOPIC_POWER: ("rack_power", "hall_power", "facility_power", "battery_state", "energy_price"),
    TOPIC_COOLING: ("cdu_readings", "plant_reading"),
    TOPIC_JOBS: (
        "job_submitted",
        "job_started",
        "job_step",
        "job_checkpoint",
        "job_failed",
        "job_finished",
    ),
    TOPIC_LEASES: ("lease_signed", "lease_notice", "lease_ended"),
    TOPIC_TOPOLOGY: ("rack_installed", "gpu_status"),
    TOPIC_NETWORK: ("link_state",),
}
#: The input topics, in the order above.
INPUT_TOPICS: Final[tuple[str, ...]] = tuple(TOPIC_EVENT_TYPES)
#: event_type -> its topic.
EVENT_TOPIC: Final[dict[str, str]] = {
    t: topic for topic, types in TOPIC_EVENT_TYPES.items() for t in types
}

if set(EVENT_TOPIC) != set(EVENT_MODELS) or len(EVENT_TOPIC) != sum(
    len(types) for types in TOPIC_EVENT_TYPES.values()
):  # pragma: no cover - guards an edit of the union
    raise ImportError("schemas.topics: every event type needs exactly one topic")
