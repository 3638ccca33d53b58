"""Event contracts of the twin (docs/EVENTS.md): versioned pydantic v2 models, the codec the
edge uses, upcasters, columnar conversion and generated JSON Schema.

Import the pieces from here::

    from schemas import decode, decode_batch, decode_telemetry, encode, EventError

- ``decode_telemetry(values)``: the ``facility.gpu`` hot path, raw values -> one
  ``twin.batches.TelemetryBatch`` plus ``(index, reason)`` rejects.
- ``decode_batch(values, expect)``: any other topic, -> events by type plus rejects;
  ``to_core_events(events)`` turns them into ``twin.batches`` objects.
- ``encode(event)``: the wire form (producers); ``schemas.binary.encode_binary`` the binary
  columnar ``gpu_telemetry`` (docs/EVENTS.md), ``schemas.binary.decode_binary`` its reference
  decoder.
"""

from __future__ import annotations

from schemas.codec import DecodedBatch, decode, decode_batch, decode_many, encode
from schemas.columnar import telemetry_batch
from schemas.core_events import to_core, to_core_events
from schemas.envelope import EventBase
from schemas.errors import EventError
from schemas.facility import (
    BatteryState,
    CduReadings,
    EnergyPrice,
    FacilityPower,
    HallPower,
    LinkState,
    PlantReading,
    RackPower,
)
from schemas.hotpath import TelemetryDecoded, decode_telemetry
from schemas.jobs import (
    JobCheckpoint,
    JobFailed,
    JobFinished,
    JobStarted,
    JobStep,
    JobSubmitted,
    ModelSpec,
    Parallelism,
)
from schemas.leases import LeaseEnded, LeaseNotice, LeaseSigned
from schemas.telemetry import GpuTelemetry
from schemas.topics import EVENT_TOPIC, TOPIC_EVENT_TYPES
from schemas.topology import GpuStatus, RackInstalled
from schemas.union import CURRENT_VERSIONS, EVENT_MODELS, Event
from schemas.upcast import UPCASTERS, register_upcaster, upcast

__all__ = [
    "CURRENT_VERSIONS",
    "EVENT_MODELS",
    "EVENT_TOPIC",
    "TOPIC_EVENT_TYPES",
    "UPCASTERS",
    "BatteryState",
    "CduReadings",
    "DecodedBatch",
    "EnergyPrice",
    "Event",
    "EventBase",
    "EventError",
    "FacilityPower",
    "GpuStatus",
    "GpuTelemetry",
    "HallPower",
    "JobCheckpoint",
    "JobFailed",
    "JobFinished",
    "JobStarted",
    "JobStep",
    "JobSubmitted",
    "LeaseEnded",
    "LeaseNotice",
    "LeaseSigned",
    "LinkState",
    "ModelSpec",
    "Parallelism",
    "PlantReading",
    "RackInstalled",
    "RackPower",
    "TelemetryDecoded",
    "decode",
    "decode_batch",
    "decode_many",
    "decode_telemetry",
    "encode",
    "register_upcaster",
    "telemetry_batch",
    "to_core",
    "to_core_events",
    "upcast",
]
