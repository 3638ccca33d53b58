"""Upcasters: the registry, the chain, and the real gpu_telemetry v0 -> v1 example."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from schemas import EventError, GpuTelemetry, decode
from schemas.examples import telemetry_payload
from schemas.hotpath import decode_telemetry
from schemas.upcast import UPCASTERS, Upcaster, register_upcaster, upcast


def _v0(n: int = 4) -> dict[str, Any]:
    """A gpu_telemetry v0 message as the old exporters wrote it."""
    v1 = telemetry_payload(np.random.default_rng(3), n=n)
    v0 = {k: v for k, v in v1.items() if k not in ("power_w", "gpu_util_pct", "jobs", "job_slot")}
    v0["schema_version"] = 0
    v0["power_mw"] = [int(p * 1000) for p in v1["power_w"]]
    v0["gpu_util"] = [round(u / 100, 3) for u in v1["gpu_util_pct"]]
    v0["job_id"] = ["job-b", None, "job-a", "job-b"][:n]
    return v0


def test_v0_telemetry_is_upcast_before_validation() -> None:
    v0 = _v0()
    event = decode(orjson.dumps(v0))
    assert isinstance(event, GpuTelemetry)
    assert event.schema_version == 1
    assert event.power_w == [p / 1000 for p in v0["power_mw"]]
    assert event.gpu_util_pct == pytest.approx([u * 100 for u in v0["gpu_util"]])
    # job ids become a dictionary in order of first appearance
    assert event.jobs == ["job-b", "job-a"]
    assert event.job_slot == [0, -1, 1, 0]


def test_upcast_does_not_modify_its_input() -> None:
    v0 = _v0()
    before = orjson.dumps(v0)
    out = upcast(v0, 1)
    assert orjson.dumps(v0) == before
    assert out["schema_version"] == 1
    assert "power_mw" not in out


def test_v0_and_v1_mix_in_a_hot_path_batch() -> None:
    v1 = orjson.dumps(telemetry_payload(np.random.default_rng(5), n=4, first_gpu=100, seq=9))
    decoded = decode_telemetry([v1, orjson.dumps(_v0()), v1])
    assert decoded.errors == []
    assert decoded.batch.n_messages == 3
    assert decoded.batch.gpu_index.tolist() == [100, 101, 102, 103, 0, 1, 2, 3, 100, 101, 102, 103]
    assert decoded.batch.job_ids == ("job-0000", "job-0001", "job-b", "job-a")


def test_v0_with_an_invalid_value_is_reported_with_the_v1_rule() -> None:
    v0 = _v0()
    v0["power_mw"][2] = 2_000_000  # 2 kW on an H100
    with pytest.raises(EventError, match=r"^power_w: must be 0 <= x <= 1050 W .* index 2, value"):
        decode(orjson.dumps(v0))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"power_mw": None}, "power_mw: field required (gpu_telemetry v0)"),
        ({"gpu_util": 0.5}, "gpu_util: must be a list (gpu_telemetry v0)"),
        ({"job_id": ["a", 5, None, None]}, "job_id[1]: must be a job id string or null"),
        ({"power_mw": [1, "x", 3, 4]}, "power_w[1]: Input should be a valid number (got 'x')"),
    ],
)
def test_broken_v0_messages(change: dict[str, Any], reason: str) -> None:
    v0 = {**_v0(), **change}
    if change.get("power_mw", 0) is None:
        del v0["power_mw"]
    with pytest.raises(EventError) as info:
        decode(orjson.dumps(v0))
    assert info.value.reason.startswith(reason), info.value.reason


def test_registry_holds_the_example() -> None:
    assert ("gpu_telemetry", 0) in UPCASTERS


def test_chain_of_custom_upcasters() -> None:
    calls: list[int] = []

    def v0(raw: dict[str, Any]) -> dict[str, Any]:
        calls.append(raw["schema_version"])
        raw["b"] = raw.pop("a") * 2
        return raw

    def v1(raw: dict[str, Any]) -> dict[str, Any]:
        calls.append(raw["schema_version"])
        raw["c"] = raw.pop("b") + 1
        return raw

    registry: dict[tuple[str, int], Upcaster] = {("thing", 0): v0, ("thing", 1): v1}
    out = upcast({"event_type": "thing", "schema_version": 0, "a": 5}, 2, registry)
    assert out == {"event_type": "thing", "schema_version": 2, "c": 11}
    assert calls == [0, 1]  # each sees the version it upgrades from
    # starting mid-chain runs only the rest
    assert upcast({"event_type": "thing", "schema_version": 1, "b": 1}, 2, registry)["c"] == 2
    # the current version passes through untouched
    same = {"event_type": "thing", "schema_version": 2, "c": 3}
    assert upcast(same, 2, registry) == same


def test_chain_errors() -> None:
    def boom(raw: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("a")

    registry: dict[tuple[str, int], Upcaster] = {("thing", 1): boom}
    with pytest.raises(EventError, match=r"^schema_version: no upcaster from thing v0 \("):
        upcast({"event_type": "thing", "schema_version": 0}, 2, registry)
    with pytest.raises(
        EventError, match=r"^schema_version: upcasting thing v1 -> v2 failed: KeyError: 'a'"
    ):
        upcast({"event_type": "thing", "schema_version": 1}, 2, registry)
    with pytest.raises(EventError, match=r"^schema_version: thing v3 is newer than the supported"):
        upcast({"event_type": "thing", "schema_version": 3}, 2, registry)


def test_registering_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_upcaster("gpu_telemetry", 0)(lambda raw: raw)
