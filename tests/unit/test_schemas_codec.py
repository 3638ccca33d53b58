"""The codec: one exception type with a clear reason, batches that keep the good events."""

from __future__ import annotations

import pickle

import orjson
import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EventError, decode, decode_batch, decode_many, encode
from schemas.examples import example_payloads
from schemas.topics import TOPIC_EVENT_TYPES

EXAMPLES = example_payloads()
GOOD = {t: orjson.dumps(p) for t, p in EXAMPLES.items()}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "invalid JSON: EOF while parsing a value at line 1 column 0"),
        (b"{", "invalid JSON: EOF while parsing an object at line 1 column 1"),
        (b"\xff\xfe{}", "invalid JSON: expected value at line 1 column 1"),
        (b"[1, 2]", "event: must be a JSON object, got a JSON array"),
        (b'"gpu_telemetry"', "event: must be a JSON object, got a JSON string"),
        (b"null", "event: must be a JSON object, got a JSON null"),
        (b"{}", "event_type: field required"),
        (b'{"event_type": 5}', "event_type: unknown event type 5 (known: battery_state,"),
        (b'{"event_type": "gpu_temperature"}', "event_type: unknown event type 'gpu_temperature'"),
        (b'{"event_type": "job_step"}', "schema_version: field required"),
        (b'{"event_type": "job_step", "schema_version": "1"}', "schema_version: must be an int"),
        (b'{"event_type": "job_step", "schema_version": 2}', "schema_version: job_step v2 is"),
        (b'{"event_type": "job_step", "schema_version": 0}', "schema_version: no upcaster"),
        (None, "value: expected a JSON object as bytes, got null (a tombstone)"),
        (12, "value: expected a JSON object as bytes, got int"),
    ],
)
def test_decode_reasons(value: object, reason: str) -> None:
    with pytest.raises(EventError) as info:
        decode(value)  # type: ignore[arg-type]
    assert info.value.reason.startswith(reason), info.value.reason


def test_decode_accepts_bytes_like_and_str() -> None:
    raw = GOOD["job_step"]
    event = decode(raw)
    assert decode(bytearray(raw)) == event
    assert decode(memoryview(raw)) == event
    assert decode(raw.decode()) == event


def test_expect_limits_the_types() -> None:
    power = TOPIC_EVENT_TYPES["facility.power"]
    assert decode(GOOD["energy_price"], power).event_type == "energy_price"
    with pytest.raises(EventError, match="event_type: 'job_step' does not belong here"):
        decode(GOOD["job_step"], power)


def test_event_error_pickles() -> None:
    err = pickle.loads(pickle.dumps(EventError("x: must be y")))
    assert isinstance(err, EventError)
    assert err.reason == "x: must be y"


def test_encode_is_compact_json_in_field_order() -> None:
    event = decode(GOOD["energy_price"])
    assert encode(event) == (
        b'{"event_type":"energy_price","schema_version":1,"ts_ns":1780000000000000000,'
        b'"source_id":"tariff","seq":0,"usd_per_mwh":62.0}'
    )


def test_decode_many_is_all_or_nothing() -> None:
    events = decode_many([GOOD["job_step"], GOOD["lease_ended"]])
    assert [e.event_type for e in events] == ["job_step", "lease_ended"]
    with pytest.raises(EventError, match=r"^message 1: invalid JSON"):
        decode_many([GOOD["job_step"], b"nope", GOOD["lease_ended"]])


def test_decode_batch_keeps_the_good_and_reports_the_bad() -> None:
    values = [
        GOOD["job_step"],
        b"garbage",
        GOOD["energy_price"],
        None,
        GOOD["job_finished"],
        orjson.dumps({**EXAMPLES["job_step"], "tokens": 0}),
    ]
    by_kind, errors = decode_batch(values)
    assert list(by_kind) == ["job_step", "energy_price", "job_finished"]
    assert [e.seq for e in by_kind["job_step"]] == [EXAMPLES["job_step"]["seq"]]
    assert [i for i, _ in errors] == [1, 3, 5]
    assert errors[2][1] == "tokens: Input should be greater than 0 (got 0)"


def test_decode_batch_with_expect() -> None:
    result = decode_batch([GOOD["job_step"], GOOD["energy_price"]], expect=("energy_price",))
    assert list(result.by_kind) == ["energy_price"]
    assert result.errors[0][0] == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_bytes_raise_only_event_error(value: bytes) -> None:
    try:
        decode(value)
    except EventError as exc:
        reason = exc.reason
        assert reason  # the point: nothing but EventError escapes


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(sorted(EXAMPLES)),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(EXAMPLES)), st.data())
def test_mutated_events_raise_only_event_error(event_type: str, data: st.DataObject) -> None:
    """Replace, delete or add one field with any JSON value: accepted or EventError."""
    payload = dict(EXAMPLES[event_type])
    key = data.draw(st.sampled_from([*sorted(payload), "extra"]))
    action = data.draw(st.sampled_from(["replace", "delete"]))
    if action == "delete" and key in payload:
        del payload[key]
    else:
        payload[key] = data.draw(JSON)
    try:
        event = decode(pydantic_core.to_json(payload))
    except EventError as exc:
        assert exc.reason  # noqa: PT017 - the point is that nothing else escapes
    else:
        assert decode(encode(event)) == event
