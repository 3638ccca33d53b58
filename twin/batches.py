"""Columnar input batches: what crosses from the validated edge (``schemas``) into the core.

The edge validates Kafka messages with the pydantic models once, then concatenates many messages
into one of these struct-of-arrays batches. Reducers in :mod:`twin` only ever see these numpy
columns, never pydantic objects, and never loop over GPUs in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "Batch",
    "BatteryState",
    "CduReadings",
    "EnergyPrice",
    "Event",
    "FacilityPower",
    "GpuStatusChange",
    "HallPower",
    "JobCheckpoint",
    "JobFailed",
    "JobFinished",
    "JobStarted",
    "JobStep",
    "JobSubmitted",
    "LeaseEnded",
    "LeaseNotice",
    "LeaseSigned",
    "LinkState",
    "ModelSpec",
    "Parallelism",
    "PlantReading",
    "RackInstalled",
    "RackPower",
    "TelemetryBatch",
]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class TelemetryBatch:
    """Many ``gpu_telemetry`` messages (one rack or node each) concatenated, in log order.

    Per-message columns have length ``m`` (messages); per-sample columns have length ``n``
    (GPU samples, all messages' GPUs back to back). Message ``k`` owns samples
    ``row_offsets[k]:row_offsets[k + 1]``.

    ``source_ids`` and ``job_ids`` are batch-level dictionaries: ``source_code`` and
    ``job_code`` index into them (``job_code == -1``: the GPU runs no job).
    """

    # per message (length m)
    source_ids: tuple[str, ...]
    source_code: I32
    seq: I64
    ts_ns: I64
    interval_ns: I64
    row_offsets: I64  # length m + 1
    # per GPU sample (length n)
    gpu_index: I32
    power_w: F32
    temp_c: F32
    memory_temp_c: F32
    sm_clock_mhz: F32
    gpu_util_pct: F32
    sm_active: F32
    tensor_active: F32
    dram_active: F32
    nvlink_bytes: F64
    xid: I32
    job_ids: tuple[str, ...]
    job_code: I32

    @property
    def n_messages(self) -> int:
        return int(self.seq.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.gpu_index.shape[0])


# --------------------------------------------------------------------------------------------
# Low-volume event kinds: one frozen dataclass per event, mirroring docs/EVENTS.md field for
# field (the envelope's ``event_type``/``schema_version`` are implied by the class). Every event
# keeps ``ts_ns``, ``source_id`` and ``seq``: the reducers deduplicate on (source_id, seq).
# Index lists are ``np.int32`` arrays; per-row columns (rack_power, hall_power, cdu_readings)
# are tuples of strings and numpy float arrays. Reducers take sequences of these, in log order.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class RackInstalled:
    """``rack_installed``: a rack's GPUs join the dense index (``gpu_index`` values)."""

    ts_ns: int
    source_id: str
    seq: int
    rack_id: str
    campus_id: str
    hall_id: str
    gpu_model: str
    gpus_per_node: int
    gpu_index: I32
    gpu_uuid: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class GpuStatusChange:
    """``gpu_status``: ``action`` is "failed", "repaired" or "drained"."""

    ts_ns: int
    source_id: str
    seq: int
    action: str
    gpu_indices: I32
    xid: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """``job_started.model``: what one token costs (FACTS.md section 3)."""

    params: float
    layers: int
    heads: int
    head_dim: int
    seq_len: int
    dtype: str = "bf16"  # "bf16" | "fp8"
    attention: bool = True  # count the 12·L·H·Q·T attention term


@dataclass(frozen=True, slots=True)
class Parallelism:
    """``job_started.parallelism``."""

    data: int = 1
    tensor: int = 1
    pipeline: int = 1


@dataclass(frozen=True, slots=True, eq=False)
class JobSubmitted:
    ts_ns: int
    source_id: str
    seq: int
    job_id: str
    tenant_id: str
    gpus_requested: int


@dataclass(frozen=True, slots=True, eq=False)
class JobStarted:
    """``job_started``; ``work_share`` None means equal work on every GPU."""

    ts_ns: int
    source_id: str
    seq: int
    job_id: str
    tenant_id: str
    gpu_indices: I32
    work_share: F64 | None
    model: ModelSpec
    parallelism: Parallelism


@dataclass(frozen=True, slots=True, eq=False)
class JobStep:
    """``job_step``; ``ts_ns`` is the step's end."""

    ts_ns: int
    source_id: str
    seq: int
    job_id: str
    step: int
    tokens: int
    duration_s: float
    exposed_comm_s: float


@dataclass(frozen=True, slots=True, eq=False)
class JobCheckpoint:
    ts_ns: int
    source_id: str
    seq: int
    job_id: str
    step: int
    duration_s: float


@dataclass(frozen=True, slots=True, eq=False)
class JobFailed:
    ts_ns: int
    source_id: str
    seq: int
    job_id: str
    reason: str
    failed_gpu_indices: I32


@dataclass(frozen=True, slots=True, eq=False)
class JobFinished:
    ts_ns: int
    source_id: str
    seq: int
    job_id: str
    steps: int


@dataclass(frozen=True, slots=True, eq=False)
class LeaseSigned:
    """``lease_signed``: exactly one of ``gpu_indices`` or ``gpu_counts`` (model -> count)."""

    ts_ns: int
    source_id: str
    seq: int
    lease_id: str
    tenant_id: str
    gpu_indices: I32 | None
    gpu_counts: tuple[tuple[str, int], ...] | None
    usd_per_month: float
    start_ns: int
    end_ns: int
    notice_days: int


@dataclass(frozen=True, slots=True, eq=False)
class LeaseNotice:
    ts_ns: int
    source_id: str
    seq: int
    lease_id: str
    effective_end_ns: int


@dataclass(frozen=True, slots=True, eq=False)
class LeaseEnded:
    ts_ns: int
    source_id: str
    seq: int
    lease_id: str


@dataclass(frozen=True, slots=True, eq=False)
class RackPower:
    """``rack_power``: one hall's rack PDUs as columns."""

    ts_ns: int
    source_id: str
    seq: int
    hall_id: str
    interval_ns: int
    rack_id: tuple[str, ...]
    pdu_power_w: F64


@dataclass(frozen=True, slots=True, eq=False)
class HallPower:
    ts_ns: int
    source_id: str
    seq: int
    interval_ns: int
    hall_id: tuple[str, ...]
    switchgear_power_w: F64


@dataclass(frozen=True, slots=True, eq=False)
class FacilityPower:
    """``facility_power``: the facility meter; total - IT is cooling and conversion overhead."""

    ts_ns: int
    source_id: str
    seq: int
    interval_ns: int
    it_power_w: float
    total_power_w: float


@dataclass(frozen=True, slots=True, eq=False)
class BatteryState:
    ts_ns: int
    source_id: str
    seq: int
    battery_id: str
    state_of_charge: float
    power_w: float
    capacity_wh: float


@dataclass(frozen=True, slots=True, eq=False)
class EnergyPrice:
    """``energy_price``: ``usd_per_mwh`` applies from ``ts_ns`` on."""

    ts_ns: int
    source_id: str
    seq: int
    usd_per_mwh: float


@dataclass(frozen=True, slots=True, eq=False)
class CduReadings:
    ts_ns: int
    source_id: str
    seq: int
    hall_id: str
    interval_ns: int
    cdu_id: tuple[str, ...]
    rack_id: tuple[str, ...]
    supply_temp_c: F64
    return_temp_c: F64
    flow_lpm: F64
    pump_power_w: F64


@dataclass(frozen=True, slots=True, eq=False)
class PlantReading:
    ts_ns: int
    source_id: str
    seq: int
    interval_ns: int
    chiller_power_w: float
    wet_bulb_c: float


@dataclass(frozen=True, slots=True, eq=False)
class LinkState:
    ts_ns: int
    source_id: str
    seq: int
    link_id: str
    campus_a: str
    campus_b: str
    latency_us: float
    bandwidth_gbps: float
    loss_fraction: float


#: Every low-volume event kind (one object per event).
Event = (
    RackInstalled
    | GpuStatusChange
    | JobSubmitted
    | JobStarted
    | JobStep
    | JobCheckpoint
    | JobFailed
    | JobFinished
    | LeaseSigned
    | LeaseNotice
    | LeaseEnded
    | RackPower
    | HallPower
    | FacilityPower
    | BatteryState
    | EnergyPrice
    | CduReadings
    | PlantReading
    | LinkState
)

#: What a reducer folds in one call: a telemetry batch, or low-volume events in log order.
Batch = TelemetryBatch | Sequence[Event]
