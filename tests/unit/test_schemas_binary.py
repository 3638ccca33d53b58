"""The binary gpu_telemetry layout: same batches as the JSON of the same readings, the hot path
agreeing with the reference decoder on every message (accept or reject, and the reason), and
the reasons for broken layouts."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import EventError, GpuTelemetry, decode
from schemas.binary import (
    HEADER,
    MAGIC,
    decode_binary,
    decode_readings,
    encode_binary,
    encode_events_binary,
    parse_layout,
)
from schemas.columnar import telemetry_batch
from schemas.examples import telemetry_payload
from schemas.hotpath import decode_telemetry
from tests.unit.test_schemas_columnar import assert_same_batch

Payload = dict[str, Any]


def _as_f32(p: Payload) -> Payload:
    """The payload with its float32 columns rounded to float32 (what the wire carries)."""
    out = dict(p)
    for name in ("power_w", "temp_c", "memory_temp_c", "sm_clock_mhz", "gpu_util_pct",
                 "sm_active", "tensor_active", "dram_active"):
        out[name] = np.asarray(p[name], np.float32).astype(np.float64).tolist()
    return out


def _readings(k: int, *, seed: int = 0, n: int = 16, rack: str = "r1", seq: int = 5,
              model: str = "H100", first_gpu: int = 0) -> list[Payload]:
    rng = np.random.default_rng(seed)
    base = telemetry_payload(rng, n=n, seq=seq, rack_id=rack, gpu_model=model,
                             first_gpu=first_gpu)
    out = []
    for r in range(k):
        p = telemetry_payload(rng, n=n, seq=seq + r, rack_id=rack, gpu_model=model,
                              first_gpu=first_gpu)
        p["gpu_uuid"] = base["gpu_uuid"]
        out.append(_as_f32(p))
    return out


def _reason(value: bytes) -> str:
    with pytest.raises(EventError) as info:
        decode_readings(value, ("gpu_telemetry",))
    return info.value.reason


@pytest.mark.parametrize("k", [1, 2, 7])
def test_binary_and_json_of_the_same_readings_give_the_same_batch(k: int) -> None:
    readings = _readings(k) + _readings(k, seed=1, rack="r2", seq=0, model="GB200", first_gpu=64)
    json_values = [orjson.dumps(p) for p in readings]
    binary_values = [encode_events_binary(readings[:k]), encode_events_binary(readings[k:])]
    from_json = decode_telemetry(json_values)
    from_binary = decode_telemetry(binary_values)
    assert from_json.errors == from_binary.errors == []
    assert_same_batch(from_binary.batch, from_json.batch)
    assert from_binary.inputs.tolist() == [0] * k + [1] * k
    events = [decode(v) for v in json_values]
    assert_same_batch(from_binary.batch, telemetry_batch(events))  # type: ignore[arg-type]
    # the reference decoder gives the same events
    ref = decode_binary(binary_values[0]) + decode_binary(binary_values[1])
    assert ref == events


def test_json_and_binary_mix_in_input_order_with_rejects() -> None:
    a, b, c = _readings(1, seed=3), _readings(3, seed=4, rack="r2"), _readings(2, seed=5)
    bad_json = {**_readings(1, seed=6)[0], "temp_c": [500.0] * 16}
    bad_bin = _readings(2, seed=7, rack="r3")
    bad_bin[1]["power_w"] = [2000.0] * 16
    values = [
        orjson.dumps(a[0]),
        encode_events_binary(b),
        orjson.dumps(bad_json),
        encode_events_binary(bad_bin),
        encode_events_binary(c)[:-1],
        encode_events_binary(c),
        b"not json",
    ]
    hot = decode_telemetry(values)
    assert [i for i, _ in hot.errors] == [2, 3, 4, 6]
    assert hot.errors[1][1].startswith("readings[1].power_w: must be 0 <= x <= 1050 W")
    assert hot.errors[2][1].startswith("binary: truncated")
    assert hot.inputs.tolist() == [0, 1, 1, 1, 5, 5]
    expected = [decode(orjson.dumps(p)) for p in (a[0], *b, *c)]
    assert_same_batch(hot.batch, telemetry_batch(expected))  # type: ignore[arg-type]


def test_job_dictionaries_of_readings_are_merged() -> None:
    one, two = _readings(2, n=4)
    one = {**one, "jobs": ["x", "y"], "job_slot": [1, 0, -1, 1]}
    two = {**two, "jobs": ["z", "x"], "job_slot": [0, 1, 1, -1]}
    events = decode_binary(encode_events_binary([one, two]))
    assert [e.jobs for e in events] == [["x", "y", "z"], ["x", "y", "z"]]
    assert [e.job_slot for e in events] == [[1, 0, -1, 1], [2, 0, 0, -1]]
    hot = decode_telemetry([encode_events_binary([one, two])]).batch
    names = [hot.job_ids[c] if c >= 0 else None for c in hot.job_code.tolist()]
    assert names == ["y", "x", None, "y", "z", "x", "x", None]


def _good(k: int = 3) -> bytes:
    return encode_events_binary(_readings(k, n=4))


def _patch(value: bytes, offset: int, fmt: str, *items: Any) -> bytes:
    out = bytearray(value)
    struct.pack_into(fmt, out, offset, *items)
    return bytes(out)


def _f32_at(value: bytes, column: int, reading: int, gpu: int) -> int:
    lay = parse_layout(value)
    return lay.f32 + 4 * ((column * lay.k + reading) * lay.n + gpu)


def _with_strings(texts: list[bytes], n: int = 4, k: int = 1, j: int = 0) -> bytes:
    """A message with these raw strings (source, rack, model, jobs, uuids)."""
    good = _good(k)
    lay = parse_layout(good)
    ends = np.cumsum([len(t) for t in texts]).astype("<u4").tobytes()
    head = HEADER.pack(MAGIC, 1, 1, 1, 5, n, k, j, 0)
    return head + good[HEADER.size : lay.ends] + ends + b"".join(texts)


_UUIDS = [b"GPU-a", b"GPU-b", b"GPU-c", b"GPU-d"]

REASON_CASES: list[tuple[str, bytes, str]] = [
    ("header cut", MAGIC + b"\x01\x01", "binary: truncated header: 6 bytes, the header has 32"),
    ("layout 2", _patch(_good(), 4, "<B", 2),
     "layout: unsupported binary layout version 2 (supported: 1)"),
    ("type code", _patch(_good(), 5, "<B", 9),
     "event_type: unknown binary event type code 9 (known: 1 = gpu_telemetry)"),
    ("schema 0", _patch(_good(), 6, "<H", 0),
     "schema_version: binary gpu_telemetry carries version 1, got 0"),
    ("reserved", _patch(_good(), 28, "<I", 7), "reserved: header bytes 28-31 must be 0, got 7"),
    ("no readings", _patch(_good(), 20, "<I", 0),
     "n_readings: a message carries at least one reading, got 0"),
    ("huge n", _patch(_good(), 16, "<I", 10**9), "binary: truncated: "),
    ("cut", _good()[:-1], "binary: truncated: "),
    ("trailing", _good() + b"\0", "binary: trailing bytes: "),
    ("no gpus", _patch(_good(1), 16, "<I", 0), "binary: "),
    ("negative seq", _patch(_good(1), 8, "<q", -1),
     "seq: Input should be greater than or equal to 0 (got -1)"),
    ("seq overflow", _patch(_good(3), 8, "<q", 2**63 - 2),
     "readings[2].seq: Input should be less than or equal to 9223372036854775807"),
    ("NaN power", _patch(_good(), _f32_at(_good(), 0, 1, 2), "<f", float("nan")),
     "readings[1].power_w[2]: Input should be a finite number (got nan)"),
    ("infinite temp", _patch(_good(1), _f32_at(_good(1), 1, 0, 3), "<f", float("inf")),
     "temp_c[3]: Input should be a finite number (got inf)"),
    ("power over TDP", _patch(_good(), _f32_at(_good(), 0, 2, 1), "<f", 1100.0),
     "readings[2].power_w: must be 0 <= x <= 1050 W (1.5 x the 700 W TDP of H100); "
     "first offending index 1, value 1100.0"),
    ("time order", _patch(_good(), HEADER.size + 8, "<q", 1780000000000000000),
     "ts_ns: readings must be in strictly increasing time order; reading 1"),
    ("bad utf-8", _with_strings([b"src", b"\xff", b"H100", *_UUIDS]),
     "rack_id: not valid UTF-8"),
    ("split character", _with_strings([b"src\xc3", b"\xa9", b"H100", *_UUIDS]),
     "source_id: not valid UTF-8"),
    ("empty source", _with_strings([b"", b"r1", b"H100", *_UUIDS]),
     "source_id: String should have at least 1 character"),
    ("unknown model", _with_strings([b"s", b"r1", b"X999", *_UUIDS]), "gpu_model: Input should"),
    ("decreasing offsets", _patch(_with_strings([b"s", b"r1", b"H100", *_UUIDS]),
                                  parse_layout(_good(1)).ends + 4, "<I", 0),
     "strings: end offset 0 of rack_id is before its start 1"),
]


@pytest.mark.parametrize(("value", "expected"),
                         [pytest.param(v, e, id=name) for name, v, e in REASON_CASES])
def test_broken_binary_messages_get_a_reason(value: bytes, expected: str) -> None:
    reason = _reason(value)
    assert reason.startswith(expected), reason
    hot = decode_telemetry([_good(), value, _good()])
    assert hot.errors == [(1, reason)]
    assert hot.batch.n_messages == 6


def test_binary_on_another_topic_and_json_decoder() -> None:
    with pytest.raises(EventError, match="'gpu_telemetry' does not belong here"):
        decode_readings(_good(), ("job_step",))
    with pytest.raises(EventError, match="invalid JSON"):
        decode(_good())


def test_single_reading_reasons_equal_the_json_path() -> None:
    payload = _readings(1, n=4)[0]
    payload["gpu_util_pct"][2] = 101.0
    json_reason = _reason(orjson.dumps(payload))
    assert _reason(encode_events_binary([payload])) == json_reason


def test_encode_binary_takes_columns_as_arrays() -> None:
    k, n = 2, 3
    cols: dict[str, Any] = {name: np.full((k, n), 0.5) for name in (
        "power_w", "temp_c", "memory_temp_c", "sm_clock_mhz", "gpu_util_pct", "sm_active",
        "tensor_active", "dram_active", "nvlink_bytes")}
    cols["xid"] = np.zeros((k, n), int)
    cols["job_slot"] = np.array([[0, -1, 0], [-1, -1, 0]])
    value = encode_binary(source_id="s", seq=0, rack_id="r", gpu_model="B200",
                          gpu_index=[7, 8, 9], gpu_uuid=["a", "b", "c"], jobs=["j"],
                          ts_ns=[10, 20], interval_ns=[10, 10], columns=cols)
    events = decode_binary(value)
    assert [(e.seq, e.ts_ns, e.gpu_index) for e in events] == [(0, 10, [7, 8, 9]),
                                                                (1, 20, [7, 8, 9])]
    with pytest.raises(ValueError, match="expected shape"):
        encode_binary(source_id="s", seq=0, rack_id="r", gpu_model="B200", gpu_index=[7],
                      gpu_uuid=["a"], jobs=[], ts_ns=[1], interval_ns=[1], columns=cols)


# ---------------------------------------------------------------- fast path vs reference
_SPECIAL = st.sampled_from([float("nan"), float("inf"), -1.0, 0.0, 1.0, 1e12, -0.0, 1051.0,
                            101.0, 131.0, 5001.0, 3.4e38])


@st.composite
def mutated_binary(draw: st.DrawFn) -> bytes:
    """A valid binary message with one value, byte or length changed (or left valid)."""
    k = draw(st.integers(1, 3))
    n = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    readings = _readings(k, n=n, seed=seed, seq=draw(st.integers(0, 10**6)))
    jobs = draw(st.integers(0, 2))
    for p in readings:
        p["jobs"] = [f"j{i}" for i in range(jobs)]
        p["job_slot"] = [min(s, jobs - 1) for s in p["job_slot"]]
    value = bytearray(encode_events_binary(readings))
    lay = parse_layout(bytes(value))
    how = draw(st.sampled_from(["none", "f32", "f64", "i32", "i64", "byte", "cut", "grow"]))
    if how == "f32":
        at = lay.f32 + 4 * draw(st.integers(0, 8 * k * n - 1))
        struct.pack_into("<f", value, at, draw(_SPECIAL))
    elif how == "f64":
        at = lay.nvlink + 8 * draw(st.integers(0, k * n - 1))
        struct.pack_into("<d", value, at, draw(_SPECIAL))
    elif how == "i32":
        section = draw(st.sampled_from([lay.gpu_index, lay.xid, lay.job_slot]))
        count = n if section == lay.gpu_index else k * n
        at = section + 4 * draw(st.integers(0, count - 1))
        struct.pack_into("<i", value, at, draw(st.integers(-3, 3) | st.integers(-2**31, 2**31 - 1)))
    elif how == "i64":
        at = draw(st.sampled_from([8, *(lay.ts + 8 * i for i in range(2 * k))]))
        struct.pack_into("<q", value, at, draw(st.integers(-2, 2) | st.integers(-2**63, 2**63 - 1)))
    elif how == "byte":
        at = draw(st.integers(0, len(value) - 1))
        value[at] = draw(st.integers(0, 255))
    elif how == "cut":
        del value[draw(st.integers(0, len(value) - 1)):]
    elif how == "grow":
        value += draw(st.binary(min_size=1, max_size=8))
    return bytes(value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_binary(), min_size=1, max_size=5))
def test_hot_path_agrees_with_the_reference_decoder(values: list[bytes]) -> None:
    good: list[GpuTelemetry] = []
    errors: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        try:
            events = decode_readings(value, ("gpu_telemetry",))
        except EventError as exc:
            errors.append((i, exc.reason))
        else:
            good.extend(events)
    hot = decode_telemetry(values)
    assert hot.errors == errors
    assert_same_batch(hot.batch, telemetry_batch(good))
