"""Bytes <-> events. The edge of the twin: every Kafka value passes through here once.

``decode`` validates the bytes directly against the discriminated union (the fast path, no
intermediate dict). Only when that fails does it look closer: parse, check the type and the
version, run the upcasters for an older version, validate again against the one model, and
turn whatever is wrong into an :class:`EventError` whose reason names the field and the rule.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple, cast

import orjson
import pydantic_core
from pydantic import ValidationError

from schemas.envelope import EventBase
from schemas.errors import EventError, format_validation_error
from schemas.union import CURRENT_VERSIONS, EVENT_ADAPTER, EVENT_MODELS, Event
from schemas.upcast import upcast

__all__ = [
    "DecodedBatch",
    "EventError",
    "decode",
    "decode_batch",
    "decode_many",
    "encode",
]

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number"}


class DecodedBatch(NamedTuple):
    """What :func:`decode_batch` returns: the good events grouped by ``event_type`` (each list
    in input order) and the bad ones as ``(index into the input, reason)``."""

    by_kind: dict[str, list[Event]]
    errors: list[tuple[int, str]]


def encode(event: EventBase) -> bytes:
    """The wire form of ``event``: compact UTF-8 JSON, fields in model order."""
    return orjson.dumps(event.model_dump(mode="python"))


def decode(
    value: bytes | bytearray | memoryview | str | None, expect: Collection[str] = ()
) -> Event:
    """Validate one Kafka value into an event, upcasting older versions first.

    ``expect``: the event types allowed here (e.g. a topic's); empty means any type.
    Raises :class:`EventError` (and nothing else) with a reason naming the field and the rule.
    """
    if isinstance(value, memoryview):
        value = value.tobytes()
    if not isinstance(value, bytes | bytearray | str):
        kind = "null (a tombstone)" if value is None else type(value).__name__
        raise EventError(f"value: expected a JSON object as bytes, got {kind}")
    try:
        event: Event = EVENT_ADAPTER.validate_json(value)
    except ValidationError:
        event = _diagnose(value)
    if expect and event.event_type not in expect:
        raise EventError(
            f"event_type: {event.event_type!r} does not belong here "
            f"(expected {', '.join(sorted(expect))})"
        )
    return event


def _diagnose(value: bytes | bytearray | str) -> Event:
    """The slow path: find out why the fast path failed, or upcast and validate."""
    try:
        raw: Any = pydantic_core.from_json(value, allow_inf_nan=True)
    except ValueError as exc:
        raise EventError(f"invalid JSON: {exc}") from None
    if not isinstance(raw, dict):
        kind = _JSON_TYPES.get(type(raw), "null" if raw is None else "boolean")
        raise EventError(f"event: must be a JSON object, got a JSON {kind}")
    event_type = raw.get("event_type")
    if event_type is None:
        raise EventError("event_type: field required")
    if not isinstance(event_type, str) or event_type not in EVENT_MODELS:
        raise EventError(
            f"event_type: unknown event type {event_type!r} "
            f"(known: {', '.join(sorted(EVENT_MODELS))})"
        )
    version = raw.get("schema_version")
    if version is None:
        raise EventError("schema_version: field required")
    if type(version) is not int:
        raise EventError(f"schema_version: must be an integer, got {version!r}")
    current = CURRENT_VERSIONS[event_type]
    payload: bytes | bytearray | str = value
    if version != current:
        upcast_raw = upcast(raw, current)
        try:
            payload = pydantic_core.to_json(upcast_raw)
        except (ValueError, TypeError) as exc:
            raise EventError(
                f"schema_version: the upcast {event_type} payload is not JSON: {exc}"
            ) from None
    try:
        event = cast(Event, EVENT_MODELS[event_type].model_validate_json(payload))
    except ValidationError as exc:
        raise EventError(format_validation_error(exc)) from None
    return event


def decode_many(values: Iterable[bytes], expect: Collection[str] = ()) -> list[Event]:
    """Decode every value, all or nothing: the first bad one raises :class:`EventError`
    whose reason starts with ``"message <index>: "``."""
    out: list[Event] = []
    for i, value in enumerate(values):
        try:
            out.append(decode(value, expect))
        except EventError as exc:
            raise EventError(f"message {i}: {exc.reason}") from None
    return out


def decode_batch(
    values: Sequence[bytes | bytearray | memoryview | None], expect: Collection[str] = ()
) -> DecodedBatch:
    """Decode a consumer batch, keeping the good events and reporting the bad ones, so the worker
    can dead-letter ``errors`` (with the original bytes at those indices) and fold the rest."""
    by_kind: dict[str, list[Event]] = {}
    errors: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        try:
            event = decode(value, expect)
        except EventError as exc:
            errors.append((i, exc.reason))
            continue
        by_kind.setdefault(event.event_type, []).append(event)
    return DecodedBatch(by_kind, errors)
