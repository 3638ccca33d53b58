"""Small builders for the twin's tests: events with sensible defaults, telemetry messages."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count

import numpy as np

from twin.batches import (
    FacilityPower,
    GpuStatusChange,
    JobStarted,
    JobStep,
    LeaseSigned,
    ModelSpec,
    Parallelism,
    RackInstalled,
    RackPower,
    TelemetryBatch,
)

S = 1_000_000_000  # ns per second
T0 = 1_000 * S  # a tick boundary for 10 s ticks

_seq = count(1)


def seq() -> int:
    return next(_seq)


def rack(
    rack_id: str,
    gpus: Sequence[int],
    model: str = "H100",
    *,
    hall: str = "h0",
    campus: str = "c0",
    ts: int = T0,
) -> RackInstalled:
    idx = np.asarray(gpus, np.int32)
    return RackInstalled(
        ts_ns=ts,
        source_id="topo",
        seq=seq(),
        rack_id=rack_id,
        campus_id=campus,
        hall_id=hall,
        gpu_model=model,
        gpus_per_node=8,
        gpu_index=idx,
        gpu_uuid=tuple(f"GPU-{i}" for i in gpus),
    )


def job(
    job_id: str,
    gpus: Sequence[int],
    *,
    ts: int = T0,
    params: float = 1e9,
    share: Sequence[float] | None = None,
    attention: bool = False,
    dtype: str = "bf16",
) -> JobStarted:
    return JobStarted(
        ts_ns=ts,
        source_id="sched",
        seq=seq(),
        job_id=job_id,
        tenant_id="t",
        gpu_indices=np.asarray(gpus, np.int32),
        work_share=None if share is None else np.asarray(share, np.float64),
        model=ModelSpec(
            params=params,
            layers=2,
            heads=2,
            head_dim=2,
            seq_len=2,
            dtype=dtype,
            attention=attention,
        ),
        parallelism=Parallelism(data=len(gpus)),
    )


def step(
    job_id: str, ts: int, *, n: int, tokens: int, duration_s: float = 2.0, exposed_s: float = 0.5
) -> JobStep:
    return JobStep(
        ts_ns=ts,
        source_id="sched",
        seq=seq(),
        job_id=job_id,
        step=n,
        tokens=tokens,
        duration_s=duration_s,
        exposed_comm_s=exposed_s,
    )


def lease(
    lease_id: str,
    tenant: str,
    gpus: Sequence[int] | None,
    usd_per_month: float,
    *,
    ts: int = T0,
    counts: tuple[tuple[str, int], ...] | None = None,
    start: int = 0,
    end: int = 2**62,
) -> LeaseSigned:
    return LeaseSigned(
        ts_ns=ts,
        source_id="leases",
        seq=seq(),
        lease_id=lease_id,
        tenant_id=tenant,
        gpu_indices=None if gpus is None else np.asarray(gpus, np.int32),
        gpu_counts=counts,
        usd_per_month=usd_per_month,
        start_ns=start,
        end_ns=end,
        notice_days=0,
    )


def status(
    action: str, gpus: Sequence[int], ts: int = T0, xid: int | None = None
) -> GpuStatusChange:
    return GpuStatusChange(
        ts_ns=ts,
        source_id="topo",
        seq=seq(),
        action=action,
        gpu_indices=np.asarray(gpus, np.int32),
        xid=xid,
        reason="test",
    )


def rack_power(
    ts: int, racks: Sequence[str], watts: Sequence[float], interval_s: float
) -> RackPower:
    return RackPower(
        ts_ns=ts,
        source_id="pdu",
        seq=seq(),
        hall_id="h0",
        interval_ns=int(interval_s * S),
        rack_id=tuple(racks),
        pdu_power_w=np.asarray(watts, np.float64),
    )


def meter(ts: int, it_w: float, total_w: float, interval_s: float) -> FacilityPower:
    return FacilityPower(
        ts_ns=ts,
        source_id="meter",
        seq=seq(),
        interval_ns=int(interval_s * S),
        it_power_w=it_w,
        total_power_w=total_w,
    )


def telemetry(
    messages: Sequence[
        tuple[str, int, int, Sequence[int], Sequence[float], Sequence[float], Sequence[int]]
    ],
    interval_s: float = 1.0,
) -> TelemetryBatch:
    """``messages`` = [(source, seq, ts, gpus, power_w, sm_active, xid), ...]."""
    sources = tuple(dict.fromkeys(m[0] for m in messages))
    sizes = [len(m[3]) for m in messages]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])

    def cat(k: int, dtype: type) -> np.ndarray:
        parts = [np.asarray(m[k], dtype) for m in messages]
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    sm = cat(5, np.float32)
    return TelemetryBatch(
        source_ids=sources,
        source_code=np.array([sources.index(m[0]) for m in messages], np.int32),
        seq=np.array([m[1] for m in messages], np.int64),
        ts_ns=np.array([m[2] for m in messages], np.int64),
        interval_ns=np.full(len(messages), int(interval_s * S), np.int64),
        row_offsets=offsets,
        gpu_index=cat(3, np.int32),
        power_w=cat(4, np.float32),
        temp_c=np.full(n, 50.0, np.float32),
        memory_temp_c=np.full(n, 60.0, np.float32),
        sm_clock_mhz=np.full(n, 1980.0, np.float32),
        gpu_util_pct=np.full(n, 100.0, np.float32),  # a kernel resident all the time
        sm_active=sm,
        tensor_active=sm,
        dram_active=sm,
        nvlink_bytes=np.zeros(n),
        xid=cat(6, np.int32),
        job_ids=(),
        job_code=np.full(n, -1, np.int32),
    )
