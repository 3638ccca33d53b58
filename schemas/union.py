"""The discriminated union of every event type, and lookups derived from the models."""

from __future__ import annotations

from typing import Annotated, Final, TypeAlias

from pydantic import Field, TypeAdapter

from schemas.envelope import EventBase
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
from schemas.jobs import (
    JobCheckpoint,
    JobFailed,
    JobFinished,
    JobStarted,
    JobStep,
    JobSubmitted,
)
from schemas.leases import LeaseEnded, LeaseNotice, LeaseSigned
from schemas.telemetry import GpuTelemetry
from schemas.topology import GpuStatus, RackInstalled

__all__ = [
    "CURRENT_VERSIONS",
    "EVENT_ADAPTER",
    "EVENT_MODELS",
    "Event",
    "event_model",
]

Event: TypeAlias = Annotated[
    GpuTelemetry
    | RackPower
    | HallPower
    | FacilityPower
    | BatteryState
    | EnergyPrice
    | CduReadings
    | PlantReading
    | JobSubmitted
    | JobStarted
    | JobStep
    | JobCheckpoint
    | JobFailed
    | JobFinished
    | LeaseSigned
    | LeaseNotice
    | LeaseEnded
    | RackInstalled
    | GpuStatus
    | LinkState,
    Field(discriminator="event_type"),
]
"""Any event; pydantic picks the model from ``event_type``."""

_MODELS: Final[tuple[type[EventBase], ...]] = (
    GpuTelemetry,
    RackPower,
    HallPower,
    FacilityPower,
    BatteryState,
    EnergyPrice,
    CduReadings,
    PlantReading,
    JobSubmitted,
    JobStarted,
    JobStep,
    JobCheckpoint,
    JobFailed,
    JobFinished,
    LeaseSigned,
    LeaseNotice,
    LeaseEnded,
    RackInstalled,
    GpuStatus,
    LinkState,
)


def _default(model: type[EventBase], field: str) -> object:
    return model.model_fields[field].default


#: event_type -> model class, in union order.
EVENT_MODELS: Final[dict[str, type[EventBase]]] = {
    str(_default(m, "event_type")): m for m in _MODELS
}
#: event_type -> the schema_version the model validates (older versions are upcast first).
CURRENT_VERSIONS: Final[dict[str, int]] = {
    t: int(str(_default(m, "schema_version"))) for t, m in EVENT_MODELS.items()
}
EVENT_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)


def event_model(event_type: str) -> type[EventBase]:
    """The model of ``event_type``; ``KeyError`` if unknown."""
    return EVENT_MODELS[event_type]
