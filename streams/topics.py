"""The topic catalogue (docs/EVENTS.md) and idempotent topic creation.

Topics are created explicitly with their partition counts; nothing relies on broker
auto-creation. Partition counts are defaults: pass ``partitions={"facility.gpu": 16}`` to change
one (for example more worker processes than partitions).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from kafka.admin import KafkaAdminClient
from kafka.errors import GroupIdNotFoundError, KafkaError

from schemas.topics import DEADLETTER_TOPIC as TWIN_DEADLETTER
from schemas.topics import KPI_TOPIC as TWIN_KPIS
from schemas.topics import PARTIALS_TOPIC as TWIN_PARTIALS
from schemas.topics import TOPIC_COOLING as FACILITY_COOLING
from schemas.topics import TOPIC_GPU as FACILITY_GPU
from schemas.topics import TOPIC_JOBS as FACILITY_JOBS
from schemas.topics import TOPIC_LEASES as FACILITY_LEASES
from schemas.topics import TOPIC_NETWORK as FACILITY_NETWORK
from schemas.topics import TOPIC_POWER as FACILITY_POWER
from schemas.topics import TOPIC_TOPOLOGY as FACILITY_TOPOLOGY
from streams.settings import Settings

# topic names are defined once, with the event contracts, in schemas.topics
__all__ = [
    "ALL_TOPICS",
    "DEFAULT_PARTITIONS",
    "FACILITY_COOLING",
    "FACILITY_GPU",
    "FACILITY_JOBS",
    "FACILITY_LEASES",
    "FACILITY_NETWORK",
    "FACILITY_POWER",
    "FACILITY_TOPOLOGY",
    "TWIN_DEADLETTER",
    "TWIN_KPIS",
    "TWIN_PARTIALS",
    "TopicError",
    "ensure_topics",
    "topic_partitions",
]

#: Default partition count of every topic the twin uses.
DEFAULT_PARTITIONS: Final[Mapping[str, int]] = MappingProxyType(
    {
        FACILITY_GPU: 8,
        FACILITY_POWER: 4,
        FACILITY_COOLING: 4,
        FACILITY_JOBS: 4,
        FACILITY_LEASES: 1,
        FACILITY_TOPOLOGY: 4,
        FACILITY_NETWORK: 1,
        TWIN_KPIS: 4,
        TWIN_DEADLETTER: 1,
        TWIN_PARTIALS: 1,  # one partition: the merger reads every tick's partials in order
    }
)

ALL_TOPICS: Final[tuple[str, ...]] = tuple(DEFAULT_PARTITIONS)

# Kafka's TOPIC_ALREADY_EXISTS error code.
_TOPIC_ALREADY_EXISTS = 36
# How kafka-python's describe_groups reports a group that does not exist: a ready coordinator.
_NO_SUCH_GROUP = f"[Error {GroupIdNotFoundError.errno}]"


class TopicError(RuntimeError):
    """A topic could not be created or is not usable."""


def topic_partitions(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """The catalogue's partition counts with ``overrides`` applied (unknown names rejected)."""
    result = dict(DEFAULT_PARTITIONS)
    for name, count in (overrides or {}).items():
        if name not in result:
            raise ValueError(f"unknown topic {name!r}; known: {', '.join(ALL_TOPICS)}")
        if count < 1:
            raise ValueError(f"topic {name!r}: partitions must be >= 1, got {count}")
        result[name] = count
    return result


def ensure_topics(
    settings: Settings,
    partitions: Mapping[str, int] | None = None,
    *,
    bootstrap: str | None = None,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> dict[str, int]:
    """Create the catalogue's topics that do not exist yet; wait until all have leaders and
    the group coordinator answers.

    Idempotent: existing topics are left as they are (their partition count is never changed,
    since that would remap keys to partitions). Returns each topic's actual partition count.
    """
    wanted = topic_partitions(partitions)
    timeout_ms = int(timeout_s * 1000)
    admin = KafkaAdminClient(
        **settings.kafka_python_kwargs(bootstrap),
        client_id="twin-topics",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
        missing = {name: n for name, n in wanted.items() if name not in existing}
        if missing:
            spec = {
                name: {"num_partitions": n, "replication_factor": replication_factor}
                for name, n in missing.items()
            }
            response = admin.create_topics(spec, timeout_ms=timeout_ms, raise_errors=False)
            _raise_on_errors(response)
        admin.wait_for_topics(list(wanted), timeout_ms=timeout_ms)
        _wait_for_group_coordinator(admin, timeout_s)
        counts = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(wanted))}
        return {name: counts[name] for name in wanted}
    finally:
        admin.close()


def _java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (signed 32 bits), which Kafka uses to place a group."""
    h = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        h = (31 * h + int(unit, 16)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _offsets_partition(group_id: str, partitions: int) -> int:
    """The ``__consumer_offsets`` partition (so the coordinator shard) of a consumer group."""
    h = _java_string_hash(group_id)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def _probe_groups(partitions: int) -> list[str]:
    """Group ids that between them land on every ``__consumer_offsets`` partition."""
    probes: dict[int, str] = {}
    i = 0
    while len(probes) < partitions:
        name = f"twin-readiness-probe-{i}"
        probes.setdefault(_offsets_partition(name, partitions), name)
        i += 1
    return [probes[p] for p in sorted(probes)]


def _wait_for_group_coordinator(admin: KafkaAdminClient, timeout_s: float) -> None:
    """Block until every group coordinator shard answers, so consumers that start next do not
    begin with a burst of retriable errors: a fresh broker first creates ``__consumer_offsets``,
    a restarted one reloads it, partition by partition."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.describe_groups(["twin-readiness-probe"])  # creates __consumer_offsets
            (offsets,) = admin.describe_topics(["__consumer_offsets"])
            partitions = len(offsets["partitions"])
            if offsets["error_code"] == 0 and partitions:
                described = admin.describe_groups(_probe_groups(partitions))
                problems = [
                    str(g["error"])
                    for g in described.values()
                    if g["error"] and not str(g["error"]).startswith(_NO_SUCH_GROUP)
                ]
                if not problems:
                    return
                problem = problems[0]
            else:
                problem = "__consumer_offsets is not ready"
        except KafkaError as exc:
            if not exc.retriable:
                raise TopicError(f"the group coordinator is not available: {exc}") from exc
            problem = str(exc)
        if time.monotonic() > deadline:
            raise TopicError(f"the group coordinator is not ready after {timeout_s:g} s: {problem}")
        time.sleep(0.2)


def _raise_on_errors(response: Mapping[str, Any]) -> None:
    problems = [
        f"{t['name']}: {t.get('error_message') or 'error code ' + str(t['error_code'])}"
        for t in response.get("topics", [])
        if t["error_code"] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if problems:
        raise TopicError("could not create topics: " + "; ".join(problems))
