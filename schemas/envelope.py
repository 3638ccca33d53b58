"""The envelope every event carries, and the small shared field types.

Rules (docs/EVENTS.md, "Envelope"): ``event_type`` (the union's discriminator), ``schema_version``,
``ts_ns`` (event time, integer nanoseconds since the Unix epoch), ``source_id`` (non-empty) and
``seq`` (per-source sequence number). Models are frozen, reject unknown fields, run in pydantic's
strict mode (no ``"1"`` for ``1``, no ``true`` for ``1``) and reject non-finite floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "EventBase",
    "GpuIndex",
    "Id",
    "NonNegInt",
    "PosFloat",
    "PosInt",
    "TimeNs",
    "check_equal_lengths",
    "check_unique",
    "rule_error",
]

INT64_MAX: Final = 2**63 - 1
INT32_MAX: Final = 2**31 - 1

#: A non-empty identifier string (rack, hall, job, tenant, lease ...).
Id = Annotated[str, Field(min_length=1)]
#: Integer nanoseconds since the Unix epoch (or a duration in ns), fits an int64.
TimeNs = Annotated[int, Field(ge=0, le=INT64_MAX)]
NonNegInt = Annotated[int, Field(ge=0, le=INT64_MAX)]
PosInt = Annotated[int, Field(gt=0, le=INT64_MAX)]
PosFloat = Annotated[float, Field(gt=0)]
#: The twin's dense GPU index (assigned by ``rack_installed``), fits an int32.
GpuIndex = Annotated[int, Field(ge=0, le=INT32_MAX)]


def _require_envelope(schema: dict[str, Any]) -> None:
    """JSON Schema: the discriminator and the version are required on the wire.

    They have defaults in Python (so producers need not repeat them), but a message without them
    cannot be routed or upcast, so the JSON Schema lists them as required.
    """
    required = schema.setdefault("required", [])
    for name in ("schema_version", "event_type"):
        if name not in required:
            required.insert(0, name)


class EventBase(BaseModel):
    """Fields every event carries. Subclasses narrow ``event_type`` and ``schema_version``
    to literals (``Literal["gpu_telemetry"]``, ``Literal[1]``) with those values as defaults."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
        json_schema_extra=_require_envelope,
    )

    event_type: str
    """The event type; selects the model (the union's discriminator)."""
    schema_version: int
    """Version of this event type's schema; older versions are upcast before validation."""
    ts_ns: TimeNs
    """Event time, integer nanoseconds since the Unix epoch."""
    source_id: Id
    """Who emitted the event (a rack exporter, a meter, a scheduler)."""
    seq: NonNegInt
    """Per-source sequence number; the same source_id and seq again is a duplicate."""


def rule_error(message: str) -> PydanticCustomError:
    """A validation error whose text is exactly ``message`` (which starts with the field name)."""
    return PydanticCustomError("event_rule", message)


def check_equal_lengths(columns: dict[str, Sequence[Any]]) -> None:
    """All columns must have the length of the first one; the message names the odd column."""
    it = iter(columns.items())
    first_name, first = next(it)
    n = len(first)
    for name, col in it:
        if len(col) != n:
            raise rule_error(
                f"{name}: column length {len(col)} differs from {first_name} length {n} "
                "(all columns must have equal length)"
            )


def check_unique(name: str, values: Sequence[Any]) -> None:
    """``values`` must not repeat; the message gives the first repeated index and value."""
    if len(set(values)) == len(values):
        return
    seen: set[Any] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise rule_error(f"{name}: must be unique; first repeated index {i}, value {v!r}")
        seen.add(v)
