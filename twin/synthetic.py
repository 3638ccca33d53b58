"""Deterministic synthetic inputs for tests and benchmarks (seeded; no file or network IO).

:func:`facility` lays out campuses > halls > racks with contiguous GPU indices and returns the
``rack_installed`` events; :func:`telemetry` builds one :class:`TelemetryBatch` of one message
per rack for a given time; :func:`start_jobs` spreads jobs over the GPUs and signs leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.batches import (
    FacilityPower,
    JobStarted,
    JobStep,
    LeaseSigned,
    ModelSpec,
    Parallelism,
    RackInstalled,
    RackPower,
    TelemetryBatch,
)

__all__ = [
    "Layout",
    "facility",
    "job_steps",
    "power_readings",
    "start_jobs",
    "telemetry",
    "tokens_for_mfu",
]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class Layout:
    """Where every rack is; ``rack_start[r]:rack_start[r] + rack_size[r]`` are its GPUs."""

    rack_ids: tuple[str, ...]
    rack_model: tuple[str, ...]
    rack_start: I64
    rack_size: I64
    events: tuple[RackInstalled, ...]

    @property
    def n_gpus(self) -> int:
        return int(self.rack_size.sum())


def facility(
    parts: Sequence[tuple[str, int, int]],
    *,
    campuses: int = 2,
    halls_per_campus: int = 2,
    ts_ns: int = 0,
) -> Layout:
    """Racks for ``parts`` = [(model, gpus, gpus_per_rack), ...], dealt round-robin over
    ``campuses x halls_per_campus`` halls; GPU indices contiguous per rack."""
    ids: list[str] = []
    models: list[str] = []
    sizes: list[int] = []
    for model, gpus, per_rack in parts:
        full, rest = divmod(gpus, per_rack)
        for k in range(full + (1 if rest else 0)):
            ids.append(f"{model.lower()}-r{k:05d}")
            models.append(model)
            sizes.append(per_rack if k < full else rest)
    size = np.asarray(sizes, np.int64)
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    n_halls = campuses * halls_per_campus
    events = []
    for r, rack_id in enumerate(ids):
        hall = r % n_halls
        campus = hall // halls_per_campus
        idx = np.arange(start[r], start[r] + size[r], dtype=np.int32)
        events.append(
            RackInstalled(
                ts_ns=ts_ns,
                source_id="topology",
                seq=r,
                rack_id=rack_id,
                campus_id=f"campus-{campus}",
                hall_id=f"hall-{campus}-{hall}",
                gpu_model=models[r],
                gpus_per_node=8 if models[r] != "GB200" else 4,
                gpu_index=idx,
                gpu_uuid=tuple(f"GPU-{i}" for i in idx.tolist()),
            )
        )
    return Layout(tuple(ids), tuple(models), start, size, tuple(events))


def telemetry(
    layout: Layout,
    ts_ns: int,
    seq: int,
    *,
    interval_ns: int = 1_000_000_000,
    rng: np.random.Generator,
    job_of_gpu: I32 | None = None,
    racks: I64 | None = None,
) -> TelemetryBatch:
    """One message per rack (``racks``, default all) at ``ts_ns``, with sequence ``seq``."""
    chosen = np.arange(len(layout.rack_ids)) if racks is None else racks
    size = layout.rack_size[chosen]
    offsets = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
    n = int(offsets[-1])
    gpu = (
        np.concatenate(
            [
                np.arange(layout.rack_start[r], layout.rack_start[r] + layout.rack_size[r])
                for r in chosen.tolist()
            ]
        ).astype(np.int32)
        if n
        else np.zeros(0, np.int32)
    )
    m = int(chosen.size)
    sm = rng.uniform(0.2, 0.95, n).astype(np.float32)
    job = np.full(n, -1, np.int32) if job_of_gpu is None else job_of_gpu[gpu].astype(np.int32)
    return TelemetryBatch(
        source_ids=tuple(layout.rack_ids[r] for r in chosen.tolist()),
        source_code=np.arange(m, dtype=np.int32),
        seq=np.full(m, seq, np.int64),
        ts_ns=np.full(m, ts_ns, np.int64),
        interval_ns=np.full(m, interval_ns, np.int64),
        row_offsets=offsets,
        gpu_index=gpu,
        power_w=(100.0 + 600.0 * sm).astype(np.float32),
        temp_c=rng.uniform(40, 80, n).astype(np.float32),
        memory_temp_c=rng.uniform(40, 90, n).astype(np.float32),
        sm_clock_mhz=np.full(n, 1980.0, np.float32),
        gpu_util_pct=(sm * 100).astype(np.float32),
        sm_active=sm,
        tensor_active=(sm * 0.8).astype(np.float32),
        dram_active=(sm * 0.5).astype(np.float32),
        nvlink_bytes=np.zeros(n),
        xid=np.zeros(n, np.int32),
        job_ids=(),
        job_code=job,
    )


def start_jobs(
    layout: Layout,
    n_jobs: int,
    *,
    ts_ns: int,
    tenants: Sequence[str] = ("anthropic", "google"),
    usd_per_month: Sequence[float] = (1.25e9, 9.2e8),
    busy: float = 0.9,
) -> tuple[list[JobStarted | LeaseSigned], I32]:
    """Leases splitting the GPUs between ``tenants`` by index, and ``n_jobs`` jobs over the
    first ``busy`` share of the GPUs in contiguous blocks. Returns the events and the job of
    every GPU (-1: none)."""
    n = layout.n_gpus
    events: list[JobStarted | LeaseSigned] = []
    bounds = np.linspace(0, n, len(tenants) + 1).astype(np.int64)
    for k, tenant in enumerate(tenants):
        events.append(
            LeaseSigned(
                ts_ns=ts_ns,
                source_id="leases",
                seq=k,
                lease_id=f"lease-{tenant}",
                tenant_id=tenant,
                gpu_indices=np.arange(bounds[k], bounds[k + 1], dtype=np.int32),
                gpu_counts=None,
                usd_per_month=usd_per_month[k % len(usd_per_month)],
                start_ns=0,
                end_ns=2**62,
                notice_days=90,
            )
        )
    job_of = np.full(n, -1, np.int32)
    edges = np.linspace(0, int(n * busy), n_jobs + 1).astype(np.int64)
    model = ModelSpec(params=70e9, layers=80, heads=64, head_dim=128, seq_len=8192)
    for j in range(n_jobs):
        idx = np.arange(edges[j], edges[j + 1], dtype=np.int32)
        job_of[idx] = j
        events.append(
            JobStarted(
                ts_ns=ts_ns,
                source_id="scheduler",
                seq=j,
                job_id=f"job-{j:03d}",
                tenant_id=tenants[j % len(tenants)],
                gpu_indices=idx,
                work_share=None,
                model=model,
                parallelism=Parallelism(data=max(1, idx.size)),
            )
        )
    return events, job_of


def job_steps(
    tokens: Sequence[int],
    *,
    ts_ns: int,
    seq: int,
    step: int,
    duration_s: float = 2.0,
    exposed_comm_s: float = 0.3,
) -> list[JobStep]:
    """One step of every job (``tokens[j]`` for job j) ending at ``ts_ns``, from the source
    "trainer" (``seq`` numbers the first of them)."""
    return [
        JobStep(
            ts_ns=ts_ns,
            source_id="trainer",
            seq=seq + j,
            job_id=f"job-{j:03d}",
            step=step,
            tokens=int(t),
            duration_s=duration_s,
            exposed_comm_s=exposed_comm_s,
        )
        for j, t in enumerate(tokens)
    ]


def tokens_for_mfu(job_of_gpu: I32, n_jobs: int, mfu: float, duration_s: float = 2.0) -> I64:
    """Tokens per step that give each job about ``mfu`` on H100-class peaks (989.4 TFLOP/s),
    for the 70B model :func:`start_jobs` uses."""
    sizes = np.bincount(job_of_gpu[job_of_gpu >= 0], minlength=n_jobs)
    fpt = 6 * 70e9 + 12 * 80 * 64 * 128 * 8192
    tokens: I64 = np.maximum(1, (mfu * 989.4e12 * sizes * duration_s / fpt)).astype(np.int64)
    return tokens


def power_readings(
    layout: Layout,
    ts_ns: int,
    seq: int,
    *,
    rack_w_per_gpu: float = 720.0,
    it_power_w: float,
    total_power_w: float,
) -> list[RackPower | FacilityPower]:
    """One second of PDU readings for every rack (``rack_w_per_gpu`` per installed GPU) and of
    the facility meter."""
    return [
        RackPower(
            ts_ns=ts_ns,
            source_id="pdu",
            seq=seq,
            hall_id="all",
            interval_ns=1_000_000_000,
            rack_id=layout.rack_ids,
            pdu_power_w=(layout.rack_size * rack_w_per_gpu).astype(np.float64),
        ),
        FacilityPower(
            ts_ns=ts_ns,
            source_id="meter",
            seq=seq,
            interval_ns=1_000_000_000,
            it_power_w=it_power_w,
            total_power_w=total_power_w,
        ),
    ]
