"""Valid example payloads (the wire form, as dicts): one per event type, plus a generator of
realistic ``gpu_telemetry`` racks. For documentation, tests and benchmarks; deterministic."""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.telemetry import power_limit_w

__all__ = ["example_payloads", "telemetry_payload"]

_T0 = 1_780_000_000_000_000_000  # 2026-05-28, ns since the epoch
_SECOND = 1_000_000_000


def telemetry_payload(
    rng: np.random.Generator,
    *,
    n: int = 64,
    gpu_model: str = "H100",
    first_gpu: int = 0,
    n_jobs: int = 2,
    seq: int = 0,
    rack_id: str = "c1-h1-r0001",
) -> dict[str, Any]:
    """One rack's ``gpu_telemetry`` message with plausible random readings."""
    limit = power_limit_w(gpu_model)
    jobs = [f"job-{k:04d}" for k in range(n_jobs)]
    return {
        "event_type": "gpu_telemetry",
        "schema_version": 1,
        "ts_ns": _T0 + seq * _SECOND,
        "source_id": f"dcgm-{rack_id}",
        "seq": seq,
        "rack_id": rack_id,
        "gpu_model": gpu_model,
        "interval_ns": _SECOND,
        "gpu_index": list(range(first_gpu, first_gpu + n)),
        "gpu_uuid": [f"GPU-{first_gpu + i:08x}-5f1e-4c2a-9b7d-{i:012x}" for i in range(n)],
        "power_w": rng.uniform(0.1 * limit, 0.66 * limit, n).round(1).tolist(),
        "temp_c": rng.uniform(30, 85, n).round(1).tolist(),
        "memory_temp_c": rng.uniform(30, 95, n).round(1).tolist(),
        "sm_clock_mhz": rng.integers(1100, 1980, n).astype(float).tolist(),
        "gpu_util_pct": rng.uniform(0, 100, n).round(1).tolist(),
        "sm_active": rng.uniform(0, 1, n).round(4).tolist(),
        "tensor_active": rng.uniform(0, 1, n).round(4).tolist(),
        "dram_active": rng.uniform(0, 1, n).round(4).tolist(),
        "nvlink_bytes": rng.integers(0, 10**11, n).astype(float).tolist(),
        "xid": [0] * n,
        "job_slot": rng.integers(-1, n_jobs, n).tolist(),
        "jobs": jobs,
    }


def _envelope(event_type: str, source_id: str, seq: int = 0) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "schema_version": 1,
        "ts_ns": _T0 + seq * _SECOND,
        "source_id": source_id,
        "seq": seq,
    }


def example_payloads() -> dict[str, dict[str, Any]]:
    """event_type -> one valid payload of that type (a fresh dict each call)."""
    sec = {"interval_ns": _SECOND}
    return {
        "gpu_telemetry": telemetry_payload(np.random.default_rng(0), n=4),
        "rack_power": {
            **_envelope("rack_power", "pdu-c1-h1"),
            "hall_id": "c1-h1",
            **sec,
            "rack_id": ["c1-h1-r0001", "c1-h1-r0002"],
            "pdu_power_w": [52_000.0, 48_500.5],
        },
        "hall_power": {
            **_envelope("hall_power", "switchgear-c1"),
            **sec,
            "hall_id": ["c1-h1", "c1-h2"],
            "switchgear_power_w": [36.1e6, 35.8e6],
        },
        "facility_power": {
            **_envelope("facility_power", "meter-c1"),
            **sec,
            "it_power_w": 262.0e6,
            "total_power_w": 298.7e6,
        },
        "battery_state": {
            **_envelope("battery_state", "bess-c1"),
            "battery_id": "bess-1",
            "state_of_charge": 0.82,
            "power_w": -1.5e6,
            "capacity_wh": 600e6,
        },
        "energy_price": {**_envelope("energy_price", "tariff"), "usd_per_mwh": 62.0},
        "cdu_readings": {
            **_envelope("cdu_readings", "cdu-c1-h1"),
            "hall_id": "c1-h1",
            **sec,
            "cdu_id": ["cdu-0001", "cdu-0002"],
            "rack_id": ["c1-h1-r0001", "c1-h1-r0002"],
            "supply_temp_c": [25.0, 25.2],
            "return_temp_c": [44.8, 45.3],
            "flow_lpm": [78.0, 80.5],
            "pump_power_w": [1200.0, 1250.0],
        },
        "plant_reading": {
            **_envelope("plant_reading", "plant-c1"),
            **sec,
            "chiller_power_w": 18.0e6,
            "wet_bulb_c": 24.5,
        },
        "job_submitted": {
            **_envelope("job_submitted", "scheduler"),
            "job_id": "job-0001",
            "tenant_id": "xai",
            "gpus_requested": 4,
        },
        "job_started": {
            **_envelope("job_started", "scheduler", 1),
            "job_id": "job-0001",
            "tenant_id": "xai",
            "gpu_indices": [0, 1, 2, 3],
            "work_share": [1.0, 1.0, 2.5, 2.5],
            "model": {
                "params": 314_000_000_000,
                "layers": 64,
                "heads": 48,
                "head_dim": 128,
                "seq_len": 8192,
                "dtype": "bf16",
                "attention": True,
            },
            "parallelism": {"data": 1, "tensor": 2, "pipeline": 2},
        },
        "job_step": {
            **_envelope("job_step", "job-0001-rank0", 7),
            "job_id": "job-0001",
            "step": 7,
            "tokens": 4_194_304,
            "duration_s": 9.5,
            "exposed_comm_s": 1.25,
        },
        "job_checkpoint": {
            **_envelope("job_checkpoint", "job-0001-rank0", 8),
            "job_id": "job-0001",
            "step": 7,
            "duration_s": 42.0,
        },
        "job_failed": {
            **_envelope("job_failed", "scheduler", 2),
            "job_id": "job-0001",
            "reason": "XID 79: GPU fell off the bus",
            "failed_gpu_indices": [2],
        },
        "job_finished": {
            **_envelope("job_finished", "scheduler", 3),
            "job_id": "job-0001",
            "steps": 1000,
        },
        "lease_signed": {
            **_envelope("lease_signed", "contracts"),
            "lease_id": "lease-anthropic",
            "tenant_id": "anthropic",
            "gpu_indices": None,
            "gpu_counts": {"H100": 150_000, "H200": 50_000, "GB200": 20_000},
            "usd_per_month": 1.25e9,
            "start_ns": _T0,
            "end_ns": _T0 + 3 * 365 * 86_400 * _SECOND,
            "notice_days": 90,
        },
        "lease_notice": {
            **_envelope("lease_notice", "contracts", 1),
            "lease_id": "lease-anthropic",
            "effective_end_ns": _T0 + 90 * 86_400 * _SECOND,
        },
        "lease_ended": {**_envelope("lease_ended", "contracts", 2), "lease_id": "lease-anthropic"},
        "rack_installed": {
            **_envelope("rack_installed", "inventory"),
            "rack_id": "c1-h1-r0001",
            "campus_id": "colossus1",
            "hall_id": "c1-h1",
            "gpu_model": "H100",
            "gpus_per_node": 8,
            "gpu_index": [0, 1, 2, 3],
            "gpu_uuid": [f"GPU-{i:08x}-5f1e-4c2a-9b7d-{i:012x}" for i in range(4)],
        },
        "gpu_status": {
            **_envelope("gpu_status", "health-monitor"),
            "action": "failed",
            "gpu_indices": [2],
            "xid": 79,
            "reason": "GPU has fallen off the bus",
        },
        "link_state": {
            **_envelope("link_state", "netmon"),
            "link_id": "c1-c2-a",
            "campus_a": "colossus1",
            "campus_b": "colossus2",
            "latency_us": 180.0,
            "bandwidth_gbps": 12_800.0,
            "loss_fraction": 0.0001,
        },
    }
