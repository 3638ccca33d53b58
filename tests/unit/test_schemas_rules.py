"""Every validation rule rejects a bad value, and the reason names the field and the rule
(for columns also the first offending index and value). For ``gpu_telemetry`` the hot path
must reject the same messages with the same reasons."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pydantic_core
import pytest

from schemas import EventError, decode
from schemas.examples import example_payloads, telemetry_payload
from schemas.hotpath import decode_telemetry

Payload = dict[str, Any]


def _tel(**overrides: Any) -> Payload:
    payload = telemetry_payload(np.random.default_rng(7), n=8, n_jobs=2)
    payload["job_slot"] = [0, 1, -1, 0, 1, -1, 0, 1]
    payload.update(overrides)
    return payload


def _set(column: str, index: int, value: Any, **kw: Any) -> Callable[[], Payload]:
    def make() -> Payload:
        payload = _tel(**kw)
        payload[column] = list(payload[column])
        payload[column][index] = value
        return payload

    return make


def _ex(event_type: str, **overrides: Any) -> Callable[[], Payload]:
    def make() -> Payload:
        payload = copy.deepcopy(example_payloads()[event_type])
        for key, value in overrides.items():
            if value is _DELETE:
                del payload[key]
            elif "." in key:
                outer, inner = key.split(".")
                payload[outer][inner] = value
            else:
                payload[key] = value
        return payload

    return make


_DELETE = object()

TELEMETRY_CASES: list[tuple[str, Callable[[], Payload], str]] = [
    (
        "power above 1.5 x TDP (H100)",
        _set("power_w", 3, 1050.5),
        "power_w: must be 0 <= x <= 1050 W (1.5 x the 700 W TDP of H100); "
        "first offending index 3, value 1050.5",
    ),
    (
        "power above 1.5 x TDP (GB200)",
        _set("power_w", 0, 1800.1, gpu_model="GB200"),
        "power_w: must be 0 <= x <= 1800 W (1.5 x the 1200 W TDP of GB200); "
        "first offending index 0, value 1800.1",
    ),
    (
        "negative power",
        _set("power_w", 5, -1.0),
        "power_w[5]: Input should be greater than or equal to 0 (got -1.0)",
    ),
    (
        "hot gpu",
        _set("temp_c", 2, 131.0),
        "temp_c[2]: Input should be less than or equal to 130 (got 131.0)",
    ),
    (
        "frozen gpu",
        _set("temp_c", 7, -21),
        "temp_c[7]: Input should be greater than or equal to -20 (got -21)",
    ),
    (
        "hot hbm",
        _set("memory_temp_c", 1, 150.5),
        "memory_temp_c[1]: Input should be less than or equal to 150 (got 150.5)",
    ),
    (
        "sm clock",
        _set("sm_clock_mhz", 4, 5001.0),
        "sm_clock_mhz[4]: Input should be less than or equal to 5000 (got 5001.0)",
    ),
    (
        "util over 100%",
        _set("gpu_util_pct", 0, 100.5),
        "gpu_util_pct[0]: Input should be less than or equal to 100 (got 100.5)",
    ),
    (
        "sm_active > 1",
        _set("sm_active", 6, 1.01),
        "sm_active[6]: Input should be less than or equal to 1 (got 1.01)",
    ),
    (
        "tensor_active < 0",
        _set("tensor_active", 0, -0.1),
        "tensor_active[0]: Input should be greater than or equal to 0 (got -0.1)",
    ),
    (
        "dram_active > 1",
        _set("dram_active", 3, 2),
        "dram_active[3]: Input should be less than or equal to 1 (got 2)",
    ),
    (
        "negative nvlink bytes",
        _set("nvlink_bytes", 2, -5.0),
        "nvlink_bytes[2]: Input should be greater than or equal to 0 (got -5.0)",
    ),
    (
        "negative xid",
        _set("xid", 1, -1),
        "xid[1]: Input should be greater than or equal to 0 (got -1)",
    ),
    (
        "negative gpu index",
        _set("gpu_index", 0, -1),
        "gpu_index[0]: Input should be greater than or equal to 0 (got -1)",
    ),
    (
        "gpu index beyond int32",
        _set("gpu_index", 0, 2**31),
        "gpu_index[0]: Input should be less than or equal to 2147483647 (got 2147483648)",
    ),
    (
        "gpu index beyond int64",
        _set("gpu_index", 0, 2**70),
        "gpu_index[0]: Input should be less than or equal to 2147483647 "
        "(got 1180591620717411303424)",
    ),
    (
        "job slot past jobs",
        _set("job_slot", 5, 2),
        "job_slot: must be -1 (no job) or an index into jobs (0..1); "
        "first offending index 5, value 2",
    ),
    (
        "job slot below -1",
        _set("job_slot", 0, -2),
        "job_slot[0]: Input should be greater than or equal to -1 (got -2)",
    ),
    (
        "job slot without jobs",
        lambda: _tel(jobs=[], job_slot=[-1] * 7 + [0]),
        "job_slot: must be -1 (no job) because jobs is empty; first offending index 7, value 0",
    ),
    (
        "repeated gpu index",
        _set("gpu_index", 4, 1),
        "gpu_index: must be unique; first repeated index 4, value 1",
    ),
    (
        "short column",
        lambda: {**_tel(), "temp_c": _tel()["temp_c"][:-1]},
        "temp_c: column length 7 differs from gpu_index length 8 "
        "(all columns must have equal length)",
    ),
    (
        "long uuid column",
        lambda: {**_tel(), "gpu_uuid": [*_tel()["gpu_uuid"], "GPU-x"]},
        "gpu_uuid: column length 9 differs from gpu_index length 8",
    ),
    (
        "no gpus",
        lambda: {
            **_tel(),
            **{
                c: []
                for c in (
                    "gpu_index",
                    "gpu_uuid",
                    "power_w",
                    "temp_c",
                    "memory_temp_c",
                    "sm_clock_mhz",
                    "gpu_util_pct",
                    "sm_active",
                    "tensor_active",
                    "dram_active",
                    "nvlink_bytes",
                    "xid",
                    "job_slot",
                )
            },
        },
        "gpu_index: List should have at least 1 item after validation, not 0",
    ),
    (
        "too many gpus",
        lambda: telemetry_payload(np.random.default_rng(1), n=1025),
        "gpu_index: List should have at most 1024 items after validation, not 1025",
    ),
    (
        "string reading",
        _set("temp_c", 3, "41.5"),
        "temp_c[3]: Input should be a valid number (got '41.5')",
    ),
    (
        "boolean reading",
        _set("sm_active", 2, True),
        "sm_active[2]: Input should be a valid number (got True)",
    ),
    (
        "null reading",
        _set("power_w", 1, None),
        "power_w[1]: Input should be a valid number (got None)",
    ),
    (
        "float gpu index",
        _set("gpu_index", 1, 1.0),
        "gpu_index[1]: Input should be a valid integer (got 1.0)",
    ),
    (
        "boolean job slot",
        _set("job_slot", 1, False),
        "job_slot[1]: Input should be a valid integer (got False)",
    ),
    (
        "non-string uuid",
        _set("gpu_uuid", 1, 5),
        "gpu_uuid[1]: Input should be a valid string (got 5)",
    ),
    (
        "empty job id",
        lambda: _tel(jobs=["job-a", ""]),
        "jobs[1]: String should have at least 1 character (got '')",
    ),
    (
        "unknown gpu model",
        lambda: _tel(gpu_model="V100"),
        "gpu_model: Input should be 'A100', 'H100', 'H200', 'B200' or 'GB200' (got 'V100')",
    ),
    (
        "zero interval",
        lambda: _tel(interval_ns=0),
        "interval_ns: Input should be greater than 0 (got 0)",
    ),
    (
        "empty rack id",
        lambda: _tel(rack_id=""),
        "rack_id: String should have at least 1 character (got '')",
    ),
    (
        "negative ts",
        lambda: _tel(ts_ns=-1),
        "ts_ns: Input should be greater than or equal to 0 (got -1)",
    ),
    (
        "ts beyond int64",
        lambda: _tel(ts_ns=2**63),
        "ts_ns: Input should be less than or equal to 9223372036854775807 "
        "(got 9223372036854775808)",
    ),
    (
        "float ts",
        lambda: _tel(ts_ns=1.5e18),
        "ts_ns: Input should be a valid integer (got 1.5e+18)",
    ),
    (
        "negative seq",
        lambda: _tel(seq=-3),
        "seq: Input should be greater than or equal to 0 (got -3)",
    ),
    (
        "empty source",
        lambda: _tel(source_id=""),
        "source_id: String should have at least 1 character (got '')",
    ),
    (
        "column is not a list",
        lambda: _tel(power_w="100,200"),
        "power_w: Input should be a valid array (got '100,200')",
    ),
    (
        "missing column",
        lambda: {k: v for k, v in _tel().items() if k != "xid"},
        "xid: field required",
    ),
]

NON_FINITE_CASES: list[tuple[str, bytes, str]] = [
    ("NaN power", b"NaN", "power_w[3]: Input should be a finite number (got nan)"),
    ("infinite power", b"Infinity", "power_w[3]: Input should be a finite number (got inf)"),
    ("overflowing power", b"1e400", "power_w[3]: Input should be a finite number (got inf)"),
    ("minus infinity", b"-Infinity", "power_w[3]: Input should be a finite number (got -inf)"),
]

OTHER_CASES: list[tuple[str, Callable[[], Payload], str]] = [
    (
        "meter total below IT",
        _ex("facility_power", total_power_w=1.0),
        "total_power_w: must be >= it_power_w (262000000.0); got 1.0",
    ),
    (
        "negative IT power",
        _ex("facility_power", it_power_w=-1.0),
        "it_power_w: Input should be greater than or equal to 0",
    ),
    (
        "battery over full",
        _ex("battery_state", state_of_charge=1.5),
        "state_of_charge: Input should be less than or equal to 1",
    ),
    (
        "battery without capacity",
        _ex("battery_state", capacity_wh=0.0),
        "capacity_wh: Input should be greater than 0",
    ),
    (
        "price cap",
        _ex("energy_price", usd_per_mwh=10_000.5),
        "usd_per_mwh: Input should be less than or equal to 10000",
    ),
    (
        "negative price",
        _ex("energy_price", usd_per_mwh=-1.0),
        "usd_per_mwh: Input should be greater than or equal to 0",
    ),
    (
        "rack pdu over 500 kW",
        _ex("rack_power", pdu_power_w=[1.0, 500_001.0]),
        "pdu_power_w[1]: Input should be less than or equal to 500000 (got 500001.0)",
    ),
    (
        "rack power columns",
        _ex("rack_power", rack_id=["a"]),
        "pdu_power_w: column length 2 differs from rack_id length 1",
    ),
    (
        "rack power repeated rack",
        _ex("rack_power", rack_id=["a", "a"]),
        "rack_id: must be unique; first repeated index 1, value 'a'",
    ),
    (
        "hall switchgear negative",
        _ex("hall_power", switchgear_power_w=[1.0, -2.0]),
        "switchgear_power_w[1]: Input should be greater than or equal to 0 (got -2.0)",
    ),
    (
        "hall power columns",
        _ex("hall_power", switchgear_power_w=[1.0]),
        "switchgear_power_w: column length 1 differs from hall_id length 2",
    ),
    (
        "coolant too hot",
        _ex("cdu_readings", supply_temp_c=[25.0, 95.0]),
        "supply_temp_c[1]: Input should be less than or equal to 90 (got 95.0)",
    ),
    (
        "coolant frozen",
        _ex("cdu_readings", return_temp_c=[-1.0, 45.0]),
        "return_temp_c[0]: Input should be greater than or equal to 0 (got -1.0)",
    ),
    (
        "negative flow",
        _ex("cdu_readings", flow_lpm=[-1.0, 3.0]),
        "flow_lpm[0]: Input should be greater than or equal to 0 (got -1.0)",
    ),
    (
        "cdu columns",
        _ex("cdu_readings", pump_power_w=[1.0]),
        "pump_power_w: column length 1 differs from cdu_id length 2",
    ),
    (
        "cdu repeated",
        _ex("cdu_readings", cdu_id=["x", "x"]),
        "cdu_id: must be unique; first repeated index 1, value 'x'",
    ),
    (
        "wet bulb",
        _ex("plant_reading", wet_bulb_c=51.0),
        "wet_bulb_c: Input should be less than or equal to 50",
    ),
    (
        "negative chiller",
        _ex("plant_reading", chiller_power_w=-1.0),
        "chiller_power_w: Input should be greater than or equal to 0",
    ),
    (
        "latency",
        _ex("link_state", latency_us=1e6 + 1),
        "latency_us: Input should be less than or equal to 1000000",
    ),
    (
        "no bandwidth",
        _ex("link_state", bandwidth_gbps=0.0),
        "bandwidth_gbps: Input should be greater than 0",
    ),
    (
        "loss over 1",
        _ex("link_state", loss_fraction=1.5),
        "loss_fraction: Input should be less than or equal to 1",
    ),
    (
        "comm longer than step",
        _ex("job_step", exposed_comm_s=9.6),
        "exposed_comm_s: must be <= duration_s (9.5); got 9.6",
    ),
    (
        "zero step time",
        _ex("job_step", duration_s=0.0, exposed_comm_s=0.0),
        "duration_s: Input should be greater than 0",
    ),
    ("no tokens", _ex("job_step", tokens=0), "tokens: Input should be greater than 0"),
    ("negative step", _ex("job_step", step=-1), "step: Input should be greater than or equal to 0"),
    (
        "checkpoint duration",
        _ex("job_checkpoint", duration_s=-1.0),
        "duration_s: Input should be greater than 0",
    ),
    (
        "no gpus requested",
        _ex("job_submitted", gpus_requested=0),
        "gpus_requested: Input should be greater than 0",
    ),
    (
        "job on no gpus",
        _ex("job_started", gpu_indices=[], work_share=None),
        "gpu_indices: List should have at least 1 item after validation, not 0",
    ),
    (
        "job gpus repeated",
        _ex("job_started", gpu_indices=[0, 1, 2, 0]),
        "gpu_indices: must be unique; first repeated index 3, value 0",
    ),
    (
        "work share length",
        _ex("job_started", work_share=[1.0, 2.0]),
        "work_share: length 2 must equal the length of gpu_indices (4)",
    ),
    (
        "zero work share",
        _ex("job_started", work_share=[1.0, 0.0, 1.0, 1.0]),
        "work_share[1]: Input should be greater than 0 (got 0.0)",
    ),
    (
        "unknown dtype",
        _ex("job_started", **{"model.dtype": "fp16"}),
        "model.dtype: Input should be 'bf16' or 'fp8' (got 'fp16')",
    ),
    (
        "zero params",
        _ex("job_started", **{"model.params": 0}),
        "model.params: Input should be greater than 0 (got 0)",
    ),
    (
        "model extra field",
        _ex("job_started", **{"model.vocab": 5}),
        "model.vocab: unknown field (extra fields are forbidden)",
    ),
    (
        "zero data parallel",
        _ex("job_started", **{"parallelism.data": 0}),
        "parallelism.data: Input should be greater than or equal to 1 (got 0)",
    ),
    (
        "failed gpus repeated",
        _ex("job_failed", failed_gpu_indices=[3, 3]),
        "failed_gpu_indices: must be unique; first repeated index 1, value 3",
    ),
    (
        "negative steps",
        _ex("job_finished", steps=-1),
        "steps: Input should be greater than or equal to 0",
    ),
    (
        "lease with both",
        _ex("lease_signed", gpu_indices=[1, 2]),
        "gpu_indices, gpu_counts: exactly one of the two must be given (got both)",
    ),
    (
        "lease with neither",
        _ex("lease_signed", gpu_counts=None),
        "gpu_indices, gpu_counts: exactly one of the two must be given (got neither)",
    ),
    (
        "lease ends before start",
        _ex("lease_signed", end_ns=1_780_000_000_000_000_000),
        "end_ns: must be > start_ns (1780000000000000000); got 1780000000000000000",
    ),
    (
        "free lease",
        _ex("lease_signed", usd_per_month=0.0),
        "usd_per_month: Input should be greater than 0",
    ),
    (
        "lease of unknown model",
        _ex("lease_signed", gpu_counts={"V100": 5}),
        "gpu_counts.V100.[key]: Input should be 'A100', 'H100', 'H200', 'B200' or 'GB200'",
    ),
    (
        "lease of zero gpus",
        _ex("lease_signed", gpu_counts={"H100": 0}),
        "gpu_counts.H100: Input should be greater than 0 (got 0)",
    ),
    (
        "lease gpus repeated",
        _ex("lease_signed", gpu_counts=None, gpu_indices=[5, 5]),
        "gpu_indices: must be unique; first repeated index 1, value 5",
    ),
    (
        "negative notice",
        _ex("lease_signed", notice_days=-1),
        "notice_days: Input should be greater than or equal to 0",
    ),
    (
        "negative notice time",
        _ex("lease_notice", effective_end_ns=-5),
        "effective_end_ns: Input should be greater than or equal to 0",
    ),
    (
        "empty lease id",
        _ex("lease_ended", lease_id=""),
        "lease_id: String should have at least 1 character",
    ),
    (
        "rack install columns",
        _ex("rack_installed", gpu_uuid=["GPU-1"]),
        "gpu_uuid: column length 1 differs from gpu_index length 4",
    ),
    (
        "rack install repeated gpu",
        _ex("rack_installed", gpu_index=[0, 1, 1, 3]),
        "gpu_index: must be unique; first repeated index 2, value 1",
    ),
    (
        "rack install no gpus per node",
        _ex("rack_installed", gpus_per_node=0),
        "gpus_per_node: Input should be greater than 0",
    ),
    (
        "unknown gpu action",
        _ex("gpu_status", action="exploded"),
        "action: Input should be 'failed', 'repaired' or 'drained' (got 'exploded')",
    ),
    (
        "status of no gpus",
        _ex("gpu_status", gpu_indices=[]),
        "gpu_indices: List should have at least 1 item after validation, not 0",
    ),
    ("status without xid field", _ex("gpu_status", xid=_DELETE), "xid: field required"),
    (
        "negative xid",
        _ex("gpu_status", xid=-1),
        "xid: Input should be greater than or equal to 0 (got -1)",
    ),
]


def _reason(raw: bytes) -> str:
    with pytest.raises(EventError) as info:
        decode(raw)
    assert str(info.value) == info.value.reason
    return info.value.reason


@pytest.mark.parametrize(
    ("make", "expected"),
    [pytest.param(m, e, id=name) for name, m, e in TELEMETRY_CASES],
)
def test_telemetry_rule(make: Callable[[], Payload], expected: str) -> None:
    raw = pydantic_core.to_json(make())
    reason = _reason(raw)
    assert reason.startswith(expected), reason
    # the hot path rejects the same message with the same reason, and keeps the good ones
    good = orjson.dumps(_tel())
    decoded = decode_telemetry([good, raw, good])
    assert decoded.errors == [(1, reason)]
    assert decoded.batch.n_messages == 2


@pytest.mark.parametrize(
    ("literal", "expected"),
    [pytest.param(lit, e, id=name) for name, lit, e in NON_FINITE_CASES],
)
def test_telemetry_non_finite(literal: bytes, expected: str) -> None:
    payload = _tel()
    payload["power_w"][3] = 123.25
    raw = orjson.dumps(payload).replace(b"123.25", literal)
    assert literal in raw
    assert _reason(raw) == expected
    assert decode_telemetry([raw]).errors == [(0, expected)]


@pytest.mark.parametrize(
    ("make", "expected"),
    [pytest.param(m, e, id=name) for name, m, e in OTHER_CASES],
)
def test_rule(make: Callable[[], Payload], expected: str) -> None:
    reason = _reason(pydantic_core.to_json(make()))
    assert reason.startswith(expected), reason


def test_non_finite_scalar() -> None:
    raw = orjson.dumps(example_payloads()["energy_price"]).replace(b"62.0", b"NaN")
    assert _reason(raw) == "usd_per_mwh: Input should be a finite number (got nan)"


def test_every_problem_gets_a_line() -> None:
    payload = {**example_payloads()["link_state"], "latency_us": -1.0, "loss_fraction": 2.0}
    lines = _reason(orjson.dumps(payload)).splitlines()
    assert lines == [
        "latency_us: Input should be greater than or equal to 0 (got -1.0)",
        "loss_fraction: Input should be less than or equal to 1 (got 2.0)",
    ]


def test_many_problems_are_capped() -> None:
    payload = example_payloads()["rack_power"]
    payload["rack_id"] = [f"r{i}" for i in range(30)]
    payload["pdu_power_w"] = [-1.0] * 30
    lines = _reason(orjson.dumps(payload)).splitlines()
    assert len(lines) == 11
    assert lines[-1] == "... and 20 more errors"
