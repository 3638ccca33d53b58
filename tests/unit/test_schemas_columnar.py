"""Telemetry events -> TelemetryBatch: correctness, the job dictionary, and the hot path
agreeing with the models on every message (accept or reject, and the reason)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pydantic_core
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import EventError, GpuTelemetry, decode, encode
from schemas.binary import decode_readings
from schemas.columnar import telemetry_batch
from schemas.examples import example_payloads, telemetry_payload
from schemas.hotpath import decode_telemetry
from schemas.telemetry import COLUMNS, RANGES, power_limit_w
from twin.batches import TelemetryBatch
from twin.gpus import GPU_MODELS

FIELDS = TelemetryBatch.__dataclass_fields__


def _event(**kw: Any) -> GpuTelemetry:
    payload = telemetry_payload(np.random.default_rng(kw.pop("seed", 0)), **kw)
    return GpuTelemetry.model_validate_json(orjson.dumps(payload))


def assert_same_batch(a: TelemetryBatch, b: TelemetryBatch) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, name
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


def test_columns_concatenate_in_order() -> None:
    a = _event(n=3, first_gpu=10, seq=1, rack_id="r1", n_jobs=2, seed=1)
    b = _event(n=2, first_gpu=20, seq=2, rack_id="r2", n_jobs=1, gpu_model="GB200", seed=2)
    batch = telemetry_batch([a, b])
    assert batch.n_messages == 2
    assert batch.n_samples == 5
    assert batch.row_offsets.tolist() == [0, 3, 5]
    assert batch.gpu_index.tolist() == [10, 11, 12, 20, 21]
    assert batch.seq.tolist() == [1, 2]
    assert batch.ts_ns.tolist() == [a.ts_ns, b.ts_ns]
    assert batch.interval_ns.tolist() == [a.interval_ns, b.interval_ns]
    assert batch.source_ids == ("dcgm-r1", "dcgm-r2")
    assert batch.source_code.tolist() == [0, 1]
    for name in ("power_w", "temp_c", "sm_active", "nvlink_bytes"):
        expected = getattr(a, name) + getattr(b, name)
        np.testing.assert_allclose(getattr(batch, name), expected, rtol=1e-6)
    assert batch.xid.tolist() == a.xid + b.xid
    dtypes = {name: getattr(batch, name).dtype for name in FIELDS if name.endswith("_w")}
    assert dtypes == {"power_w": np.float32}
    assert batch.nvlink_bytes.dtype == np.float64
    assert batch.gpu_index.dtype == np.int32


def test_job_dictionary_is_remapped_to_batch_codes() -> None:
    base = example_payloads()["gpu_telemetry"]  # 4 GPUs
    one = {**base, "seq": 1, "jobs": ["job-x", "job-y"], "job_slot": [1, 0, -1, 1]}
    two = {**base, "seq": 2, "jobs": ["job-z", "job-x"], "job_slot": [0, 1, 1, -1]}
    three = {**base, "seq": 3, "jobs": [], "job_slot": [-1, -1, -1, -1]}
    events = [GpuTelemetry.model_validate(p) for p in (one, two, three)]
    batch = telemetry_batch(events)
    assert batch.job_ids == ("job-x", "job-y", "job-z")
    assert batch.job_code.tolist() == [1, 0, -1, 1, 2, 0, 0, -1, -1, -1, -1, -1]
    # same source twice: one dictionary entry
    assert batch.source_ids == (base["source_id"],)
    assert batch.source_code.tolist() == [0, 0, 0]
    hot = decode_telemetry([orjson.dumps(p) for p in (one, two, three)])
    assert hot.errors == []
    assert_same_batch(batch, hot.batch)


def test_empty_batches() -> None:
    for batch in (telemetry_batch([]), decode_telemetry([]).batch):
        assert batch.n_messages == 0
        assert batch.n_samples == 0
        assert batch.row_offsets.tolist() == [0]
        assert batch.job_ids == ()


def test_hot_path_rejects_and_keeps_order() -> None:
    good = [orjson.dumps(telemetry_payload(np.random.default_rng(i), n=3, seq=i)) for i in range(4)]
    bad_range = orjson.dumps({**orjson.loads(good[0]), "power_w": [1.0, 2.0, 5000.0]})
    values = [good[0], b"junk", good[1], bad_range, None, good[2], good[3]]
    decoded = decode_telemetry(values)
    assert [i for i, _ in decoded.errors] == [1, 3, 4]
    assert decoded.errors[1][1].startswith("power_w: must be 0 <= x <= 1050 W")
    assert decoded.batch.seq.tolist() == [0, 1, 2, 3]
    expected = telemetry_batch([decode(v) for v in good])  # type: ignore[misc]
    assert_same_batch(decoded.batch, expected)


def test_hot_path_refuses_other_event_types() -> None:
    raw = orjson.dumps(example_payloads()["job_step"])
    decoded = decode_telemetry([raw])
    assert decoded.errors == [
        (0, "event_type: 'job_step' does not belong here (expected gpu_telemetry)")
    ]


def test_hot_path_rescues_what_it_is_unsure_of() -> None:
    """A job id containing "true" sends the message to the models, which accept it."""
    payload = telemetry_payload(np.random.default_rng(0), n=2, seq=1)
    payload["jobs"] = ["true-north", "false-start"]
    other = telemetry_payload(np.random.default_rng(1), n=2, seq=2, first_gpu=2)
    values = [orjson.dumps(other), orjson.dumps(payload), orjson.dumps(other)]
    decoded = decode_telemetry(values)
    assert decoded.errors == []
    assert decoded.batch.seq.tolist() == [2, 1, 2]
    assert decoded.batch.job_ids == ("job-0000", "job-0001", "true-north", "false-start")


def test_a_stale_derived_block_is_never_used() -> None:
    event = _event(n=3)
    copy = event.model_copy(update={"power_w": [1.0, 2.0, 3.0]})
    assert telemetry_batch([copy]).power_w.tolist() == [1.0, 2.0, 3.0]


# ------------------------------------------------------------------ property tests


@st.composite
def telemetry(draw: st.DrawFn) -> dict[str, Any]:
    """Any valid gpu_telemetry payload."""
    n = draw(st.integers(1, 80))
    model = draw(st.sampled_from(sorted(GPU_MODELS)))
    jobs = draw(st.lists(st.text(min_size=1, max_size=6), max_size=4))

    def column(name: str, hi: float | None = None) -> list[float]:
        rng = RANGES[name]
        top = hi if hi is not None else rng.hi if rng.hi is not None else 1e15
        return draw(st.lists(st.floats(rng.lo, top), min_size=n, max_size=n))

    start = draw(st.integers(0, 2**31 - 1 - n))
    return {
        "event_type": "gpu_telemetry",
        "schema_version": 1,
        "ts_ns": draw(st.integers(0, 2**63 - 1)),
        "source_id": draw(st.text(min_size=1, max_size=8)),
        "seq": draw(st.integers(0, 2**63 - 1)),
        "rack_id": draw(st.text(min_size=1, max_size=8)),
        "gpu_model": model,
        "interval_ns": draw(st.integers(1, 2**63 - 1)),
        "gpu_index": draw(st.permutations(list(range(start, start + n)))),
        "gpu_uuid": draw(st.lists(st.text(max_size=5), min_size=n, max_size=n)),
        "power_w": column("power_w", power_limit_w(model)),
        "temp_c": column("temp_c"),
        "memory_temp_c": column("memory_temp_c"),
        "sm_clock_mhz": column("sm_clock_mhz"),
        "gpu_util_pct": column("gpu_util_pct"),
        "sm_active": column("sm_active"),
        "tensor_active": column("tensor_active"),
        "dram_active": column("dram_active"),
        "nvlink_bytes": column("nvlink_bytes"),
        "xid": draw(st.lists(st.integers(0, 200), min_size=n, max_size=n)),
        "job_slot": draw(st.lists(st.integers(-1, len(jobs) - 1), min_size=n, max_size=n)),
        "jobs": jobs,
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(telemetry(), min_size=1, max_size=4))
def test_valid_telemetry_round_trips_and_converts(payloads: list[dict[str, Any]]) -> None:
    raws = [orjson.dumps(p) for p in payloads]
    events = [decode(r) for r in raws]
    for event, payload in zip(events, payloads, strict=True):
        assert isinstance(event, GpuTelemetry)
        assert decode(encode(event)) == event
        assert orjson.loads(encode(event)) == payload
    batch = telemetry_batch(events)  # type: ignore[arg-type]
    n = sum(len(p["gpu_index"]) for p in payloads)
    assert batch.n_messages == len(payloads)
    assert batch.n_samples == n
    for name in FIELDS:
        column = getattr(batch, name)
        if isinstance(column, np.ndarray) and name not in ("row_offsets",):
            assert column.shape[0] in (n, len(payloads)), name
    assert batch.gpu_index.tolist() == [g for p in payloads for g in p["gpu_index"]]
    codes = [
        -1 if s < 0 else batch.job_ids.index(p["jobs"][s]) for p in payloads for s in p["job_slot"]
    ]
    assert batch.job_code.tolist() == codes
    hot = decode_telemetry(raws)
    assert hot.errors == []
    assert_same_batch(hot.batch, batch)


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(-2, 1030)
        | st.floats()
        | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=6,
    )


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payload with one field, or one element of a column, replaced or removed."""
    payload = draw(telemetry())
    key = draw(st.sampled_from([*payload, "extra"]))
    how = draw(st.sampled_from(["field", "element", "delete", "truncate"]))
    if how == "delete" and key in payload:
        del payload[key]
    elif how == "element" and key in (*COLUMNS, "jobs") and payload[key]:
        index = draw(st.integers(0, len(payload[key]) - 1))
        payload[key][index] = draw(_json_values())
    elif how == "truncate" and key in COLUMNS:
        payload[key] = payload[key][:-1]
    else:
        payload[key] = draw(_json_values())
    return bytes(pydantic_core.to_json(payload))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated() | st.binary(max_size=40), min_size=1, max_size=5))
def test_hot_path_agrees_with_the_models(values: list[bytes]) -> None:
    good: list[GpuTelemetry] = []
    errors: list[tuple[int, str]] = []
    for i, value in enumerate(values):
        try:  # decode() for JSON; a value starting with the binary magic is a binary message
            events = decode_readings(value, ("gpu_telemetry",))
        except EventError as exc:
            errors.append((i, exc.reason))
        else:
            assert all(isinstance(e, GpuTelemetry) for e in events)
            good.extend(events)
    hot = decode_telemetry(values)
    assert hot.errors == errors
    assert_same_batch(hot.batch, telemetry_batch(good))


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"true"])
def test_hot_path_on_json_literals(literal: bytes) -> None:
    payload = telemetry_payload(np.random.default_rng(0), n=2)
    payload["dram_active"][1] = 0.123456
    raw = orjson.dumps(payload).replace(b"0.123456", literal)
    with pytest.raises(EventError) as info:
        decode(raw)
    assert decode_telemetry([raw]).errors == [(0, info.value.reason)]
