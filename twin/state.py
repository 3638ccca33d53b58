"""The twin's state: struct-of-arrays, preallocated, grown by amortized doubling.

Families of arrays share a first-axis length (``capacity``) and a live length (``n_<family>``):

- ``gpu_*``    one row per dense GPU index (from ``rack_installed``); never a Python object per GPU
- ``rack_*``, ``hall_*``, ``campus_*``  topology (campus > hall > rack > GPU)
- ``job_*``, ``lease_*``, ``tenant_*``  scheduler and contracts (tenant 0 is "unleased")
- ``cell_*``   *cells*: the groups of GPUs that share (rack, job, work-share class, lease,
  status). Every per-GPU quantity the kernels need is uniform inside a cell or additive over
  it, so telemetry is folded straight into per-cell accumulators and a tick's kernels run on a
  few thousand cells instead of 220,000 GPUs (see :mod:`twin.cells`).
- ``src_*``    per-source high-water marks of ``seq`` (deduplication)
- ``bat_*``, ``link_*``   latest battery and network-link readings

Registries map string ids to dense indices (dicts: per rack/job/lease, never per GPU).

The state is owned by one fold: reducers mutate it in place (copying 220,000-row arrays per
batch would cost more than the fold). :meth:`TwinState.copy` gives an independent copy for
time travel and what-if runs.
"""

from __future__ import annotations

import copy as _copy
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACC_E",
    "ACC_N",
    "ACC_T",
    "COUNTERS",
    "DEFAULT_M_REF",
    "DEFAULT_TICK_NS",
    "DEFAULT_USD_PER_MWH",
    "FAMILIES",
    "MAX_TICK_NS",
    "Cat",
    "JobPhase",
    "Mode",
    "Status",
    "TwinState",
]

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

DEFAULT_TICK_NS: Final[int] = 10_000_000_000
DEFAULT_M_REF: Final[float] = 0.40
DEFAULT_USD_PER_MWH: Final[float] = 62.0  # FACTS.md section 1, press


class Status:
    """``gpu_status`` codes (int8)."""

    UP: Final = 0
    FAILED: Final = 1
    DRAINED: Final = 2


class JobPhase:
    """``job_phase`` codes (int8)."""

    SUBMITTED: Final = 0
    PENDING: Final = 1  # started, not yet stepped
    STEPPING: Final = 2
    RESTARTING: Final = 3  # after job_failed, until the next step
    FINISHED: Final = 4


class Mode:
    """Estimator modes: which accumulator slot a sample's time and energy land in.

    A STEP sample is split further into compute, comm_stall and straggler_wait.
    """

    STEP: Final = 0
    ALLOC_IDLE: Final = 1
    UNALLOC: Final = 2
    DOWN: Final = 3
    N: Final = 4


class Cat:
    """The six time categories, in DESIGN.md's order (rows of the per-cell accumulators)."""

    COMPUTE: Final = 0
    STRAGGLER: Final = 1
    COMM: Final = 2
    ALLOC_IDLE: Final = 3
    UNALLOC: Final = 4
    DOWN: Final = 5
    N: Final = 6


#: Per-cell accumulators, float64 holding whole numbers: rows ACC_T + Cat.* are sample time in
#: ns, rows ACC_E + Cat.* board energy in uJ. Sums of whole numbers below 2**53 are exact in any
#: order, so the fold is bit-identical under any batch split; a tick of at most MAX_TICK_NS keeps
#: a 1024-GPU cell at 1.5 x the largest TDP below that bound.
ACC_T: Final = 0
ACC_E: Final = Cat.N
ACC_N: Final = 2 * Cat.N
MAX_TICK_NS: Final = 3600 * 10**9

#: family -> {field name: fill value}; every field's first axis is the family's capacity,
#: except ``cell_acc`` (shape (ACC_N, capacity): one contiguous row per accumulator column).
FAMILIES: Final[dict[str, dict[str, float]]] = {
    "gpu": {
        "gpu_installed": 0,
        "gpu_rack": -1,
        "gpu_model": -1,
        "gpu_job": -1,
        "gpu_share": 0.0,
        "gpu_share_code": 0,
        "gpu_lease": -1,
        "gpu_status": 0,
        "gpu_cell": -1,
        "gpu_last_compute": np.nan,
        "gpu_last_power_w": np.nan,
        "gpu_last_temp_c": np.nan,
        "gpu_strag_s": 0.0,
        "gpu_win_compute_ns": 0.0,  # compute time since the job's last step (attribution window)
        "gpu_win_step_ns": 0.0,  # time spent stepping in that window
    },
    "rack": {
        "rack_campus": -1,
        "rack_hall": -1,
        "rack_model": -1,
        "rack_gpus_per_node": 0,
        "rack_n_gpus": 0,
        "rack_pdu_j": 0.0,
        "rack_pdu_seen": 0,
        "rack_strag_s": 0.0,
        "rack_supply_c": np.nan,
        "rack_return_c": np.nan,
        "rack_flow_lpm": np.nan,
        "rack_pump_w": np.nan,
    },
    "hall": {"hall_campus": -1, "hall_switchgear_w": np.nan, "hall_switchgear_j": 0.0},
    "campus": {"campus_n_halls": 0},
    "job": {
        "job_phase": 0,
        "job_gpus_requested": 0,
        "job_flops_per_token": 0.0,
        "job_fp8": 0,
        "job_share_total": 0.0,
        "job_rate_flops": 0.0,
        "job_comm_frac": 0.0,
        "job_last_end_ns": 0,
        "job_last_dur_s": 0.0,
        "job_deadline_ns": 0,
        "job_ckpt_start_ns": 0,
        "job_ckpt_end_ns": 0,
        "job_steps": 0,
        "job_tokens": 0.0,
        "job_flops": 0.0,
    },
    "lease": {
        "lease_tenant": 0,
        "lease_usd_per_month": 0.0,
        "lease_start_ns": 0,
        "lease_end_ns": 0,
        "lease_eff_end_ns": 0,
        "lease_notice_days": 0,
        "lease_n_gpus": 0,
        "lease_revenue_usd": 0.0,
    },
    "tenant": {
        "tenant_revenue_usd": 0.0,
        "tenant_energy_usd": 0.0,
        "tenant_useful_flops": 0.0,
    },
    "cell": {
        "cell_key": -1,
        "cell_rack": -1,
        "cell_job": -1,
        "cell_lease": -1,
        "cell_status": 0,
        "cell_share": 0.0,
        "cell_n": 0,
        "cell_corr_ns": 0,
        "cell_peak": 0.0,
        "cell_mode": Mode.UNALLOC,
        "cell_comm": 0.0,
        "cell_floor": 0.0,
        "cell_deadline_ns": 0,
        "cell_step_end_ns": 0,
        "cell_step_s": 0.0,
        "cell_ckpt_start_ns": 0,
        "cell_ckpt_end_ns": 0,
        "cell_acc": 0,
        "cell_flops": 0.0,
        "cell_carry": 0.0,
        "cell_strag_s": 0.0,
    },
    "src": {"src_hwm": -1},
    "bat": {"bat_soc": np.nan, "bat_power_w": np.nan, "bat_capacity_wh": np.nan},
    "link": {
        "link_campus_a": -1,
        "link_campus_b": -1,
        "link_latency_us": np.nan,
        "link_bandwidth_gbps": np.nan,
        "link_loss": np.nan,
    },
}

#: Tick counters (int64 array ``tick_counts``, reset at close; ``total_counts`` never resets).
COUNTERS: Final[tuple[str, ...]] = (
    "events",  # accepted low-volume events
    "messages",  # accepted telemetry messages
    "samples",  # accepted GPU samples
    "duplicates",  # events/messages dropped as duplicates (seq <= source high-water mark)
    "late",  # accepted events/messages with ts_ns < open tick start (folded into the open tick)
    "unknown",  # samples/rows/events naming a GPU, rack, job or lease the twin does not know
)


def _alloc(family: str, name: str, cap: int) -> npt.NDArray[np.generic]:
    dtype = _DTYPES[name]
    shape: tuple[int, ...] = (ACC_N, cap) if name == "cell_acc" else (cap,)
    return np.full(shape, FAMILIES[family][name], dtype=dtype)


_DTYPES: Final[dict[str, type[np.generic]]] = {
    "gpu_installed": np.bool_,
    "gpu_rack": np.int32,
    "gpu_model": np.int8,
    "gpu_job": np.int32,
    "gpu_share": np.float64,
    "gpu_share_code": np.int16,
    "gpu_lease": np.int32,
    "gpu_status": np.int8,
    "gpu_cell": np.int32,
    "gpu_last_compute": np.float32,
    "gpu_last_power_w": np.float32,
    "gpu_last_temp_c": np.float32,
    "gpu_strag_s": np.float64,
    "gpu_win_compute_ns": np.float64,
    "gpu_win_step_ns": np.float64,
    "rack_campus": np.int32,
    "rack_hall": np.int32,
    "rack_model": np.int8,
    "rack_gpus_per_node": np.int32,
    "rack_n_gpus": np.int32,
    "rack_pdu_j": np.float64,
    "rack_pdu_seen": np.bool_,
    "rack_strag_s": np.float64,
    "rack_supply_c": np.float64,
    "rack_return_c": np.float64,
    "rack_flow_lpm": np.float64,
    "rack_pump_w": np.float64,
    "hall_campus": np.int32,
    "hall_switchgear_w": np.float64,
    "hall_switchgear_j": np.float64,
    "campus_n_halls": np.int32,
    "job_phase": np.int8,
    "job_gpus_requested": np.int64,
    "job_flops_per_token": np.float64,
    "job_fp8": np.bool_,
    "job_share_total": np.float64,
    "job_rate_flops": np.float64,
    "job_comm_frac": np.float64,
    "job_last_end_ns": np.int64,
    "job_last_dur_s": np.float64,
    "job_deadline_ns": np.int64,
    "job_ckpt_start_ns": np.int64,
    "job_ckpt_end_ns": np.int64,
    "job_steps": np.int64,
    "job_tokens": np.float64,
    "job_flops": np.float64,
    "lease_tenant": np.int32,
    "lease_usd_per_month": np.float64,
    "lease_start_ns": np.int64,
    "lease_end_ns": np.int64,
    "lease_eff_end_ns": np.int64,
    "lease_notice_days": np.int64,
    "lease_n_gpus": np.int64,
    "lease_revenue_usd": np.float64,
    "tenant_revenue_usd": np.float64,
    "tenant_energy_usd": np.float64,
    "tenant_useful_flops": np.float64,
    "cell_key": np.int64,
    "cell_rack": np.int32,
    "cell_job": np.int32,
    "cell_lease": np.int32,
    "cell_status": np.int8,
    "cell_share": np.float64,
    "cell_n": np.int64,
    "cell_corr_ns": np.int64,
    "cell_peak": np.float64,
    "cell_mode": np.int8,
    "cell_comm": np.float32,
    "cell_floor": np.float32,
    "cell_deadline_ns": np.int64,
    "cell_step_end_ns": np.int64,
    "cell_step_s": np.float64,
    "cell_ckpt_start_ns": np.int64,
    "cell_ckpt_end_ns": np.int64,
    "cell_acc": np.float64,
    "cell_flops": np.float64,
    "cell_carry": np.float64,
    "cell_strag_s": np.float64,
    "src_hwm": np.int64,
    "bat_soc": np.float64,
    "bat_power_w": np.float64,
    "bat_capacity_wh": np.float64,
    "link_campus_a": np.int32,
    "link_campus_b": np.int32,
    "link_latency_us": np.float64,
    "link_bandwidth_gbps": np.float64,
    "link_loss": np.float64,
}

_INITIAL_CAP: Final[dict[str, int]] = {
    "gpu": 1024,
    "rack": 64,
    "hall": 8,
    "campus": 4,
    "job": 16,
    "lease": 8,
    "tenant": 4,
    "cell": 128,
    "src": 256,
    "bat": 4,
    "link": 4,
}


class TwinState:
    """All of the twin's state. Arrays are public for the kernels and snapshots; change them
    only through :mod:`twin.reducers` so the fold stays deterministic."""

    # configuration, fixed at construction
    tick_ns: int
    m_ref: float
    default_usd_per_mwh: float
    top_n: int
    stall_factor: float
    pace_tolerance: float

    # the open tick [tick_start_ns, tick_end_ns); -1 until the first accepted event
    tick_start_ns: int
    tick_end_ns: int
    tick_seq: int  # ticks closed so far
    usd_per_mwh: float
    meter_total_j: float  # facility meter, open tick
    meter_it_j: float
    chiller_j: float
    wet_bulb_c: float
    flops_dropped: float  # credited FLOPs whose cell vanished before they could be credited
    tick_counts: I64
    total_counts: I64
    cells_version: int  # bumped whenever cells are created, re-keyed or renumbered
    cells_compacted: int  # cells_version after the last compaction
    strag_top: I32
    strag_top_racks: I32
    strag_any: bool

    # arrays (see FAMILIES); declared for type checkers
    gpu_installed: B
    gpu_rack: I32
    gpu_model: I8
    gpu_job: I32
    gpu_share: F64
    gpu_share_code: npt.NDArray[np.int16]
    gpu_lease: I32
    gpu_status: I8
    gpu_cell: I32
    gpu_last_compute: F32
    gpu_win_compute_ns: F64
    gpu_win_step_ns: F64
    gpu_last_power_w: F32
    gpu_last_temp_c: F32
    gpu_strag_s: F64
    rack_campus: I32
    rack_hall: I32
    rack_model: I8
    rack_gpus_per_node: I32
    rack_n_gpus: I32
    rack_pdu_j: F64
    rack_pdu_seen: B
    rack_strag_s: F64
    rack_supply_c: F64
    rack_return_c: F64
    rack_flow_lpm: F64
    rack_pump_w: F64
    hall_campus: I32
    hall_switchgear_w: F64
    hall_switchgear_j: F64
    campus_n_halls: I32
    job_phase: I8
    job_gpus_requested: I64
    job_flops_per_token: F64
    job_fp8: B
    job_share_total: F64
    job_rate_flops: F64
    job_comm_frac: F64
    job_last_end_ns: I64
    job_last_dur_s: F64
    job_deadline_ns: I64
    job_ckpt_start_ns: I64
    job_ckpt_end_ns: I64
    job_steps: I64
    job_tokens: F64
    job_flops: F64
    lease_tenant: I32
    lease_usd_per_month: F64
    lease_start_ns: I64
    lease_end_ns: I64
    lease_eff_end_ns: I64
    lease_notice_days: I64
    lease_n_gpus: I64
    lease_revenue_usd: F64
    tenant_revenue_usd: F64
    tenant_energy_usd: F64
    tenant_useful_flops: F64
    cell_key: I64
    cell_rack: I32
    cell_job: I32
    cell_lease: I32
    cell_status: I8
    cell_share: F64
    cell_n: I64
    cell_corr_ns: I64
    cell_peak: F64
    cell_mode: I8
    cell_comm: F32
    cell_floor: F32
    cell_deadline_ns: I64
    cell_step_end_ns: I64
    cell_step_s: F64
    cell_ckpt_start_ns: I64
    cell_ckpt_end_ns: I64
    cell_acc: F64
    cell_flops: F64
    cell_carry: F64
    cell_strag_s: F64
    src_hwm: I64
    bat_soc: F64
    bat_power_w: F64
    bat_capacity_wh: F64
    link_campus_a: I32
    link_campus_b: I32
    link_latency_us: F64
    link_bandwidth_gbps: F64
    link_loss: F64

    def __init__(
        self,
        tick_ns: int = DEFAULT_TICK_NS,
        *,
        m_ref: float = DEFAULT_M_REF,
        usd_per_mwh: float = DEFAULT_USD_PER_MWH,
        top_n: int = 10,
        stall_factor: float = 1.5,
        pace_tolerance: float = 0.02,
    ) -> None:
        if not 0 < tick_ns <= MAX_TICK_NS:
            raise ValueError(f"tick_ns must be in (0, {MAX_TICK_NS}] (one hour)")
        if not 0.0 < m_ref <= 1.0:
            raise ValueError("m_ref must be in (0, 1]")
        self.tick_ns = int(tick_ns)
        self.m_ref = float(m_ref)
        self.default_usd_per_mwh = float(usd_per_mwh)
        self.top_n = int(top_n)
        self.stall_factor = float(stall_factor)
        self.pace_tolerance = float(pace_tolerance)
        self.tick_start_ns = -1
        self.tick_end_ns = -1
        self.tick_seq = 0
        self.usd_per_mwh = float(usd_per_mwh)
        self.meter_total_j = 0.0
        self.meter_it_j = 0.0
        self.chiller_j = 0.0
        self.wet_bulb_c = float("nan")
        self.flops_dropped = 0.0
        self.tick_counts = np.zeros(len(COUNTERS), np.int64)
        self.total_counts = np.zeros(len(COUNTERS), np.int64)
        self.cells_version = 0
        self.cells_compacted = -1
        # live lengths and capacities per family
        self.n: dict[str, int] = dict.fromkeys(FAMILIES, 0)
        self.cap: dict[str, int] = dict(_INITIAL_CAP)
        for family, names in FAMILIES.items():
            for name in names:
                setattr(self, name, _alloc(family, name, self.cap[family]))
        # registries: string id -> dense index, and back
        self.src_index: dict[str, int] = {}
        self.rack_index: dict[str, int] = {}
        self.rack_ids: list[str] = []
        self.rack_uuids: list[tuple[str, ...]] = []
        self.hall_index: dict[str, int] = {}
        self.hall_ids: list[str] = []
        self.campus_index: dict[str, int] = {}
        self.campus_ids: list[str] = []
        self.job_index: dict[str, int] = {}
        self.job_ids: list[str] = []
        self.job_tenant_ids: list[str] = []  # the scheduler's tenant (not the lease owner)
        self.job_members: list[I32] = []  # GPUs a job_started gave the job (filter by gpu_job)
        self.job_active: list[I32] = []  # job_members still allocated to the job (refreshed too)
        self.job_cells: list[I32] = []  # the job's cells (refreshed when cells change)
        self.job_cell_w: list[F64] = []  # fraction of the job's work on each of its cells
        self.lease_index: dict[str, int] = {}
        self.lease_ids: list[str] = []
        self.lease_pending: dict[int, list[tuple[int, int]]] = {}  # lease -> [(model, count)]
        self.tenant_index: dict[str, int] = {"unleased": 0}
        self.tenant_ids: list[str] = ["unleased"]
        self.n["tenant"] = 1
        self.cell_index: dict[int, int] = {}
        self.bat_index: dict[str, int] = {}
        self.bat_ids: list[str] = []
        self.link_index: dict[str, int] = {}
        self.link_ids: list[str] = []
        self.strag_top = np.zeros(0, np.int32)  # top_n GPUs by straggler cost, open tick
        self.strag_top_racks = np.zeros(0, np.int32)  # top_n racks by straggler cost
        self.strag_any = False  # any straggler cost in the open tick
        self.dirty_jobs: set[int] = set()  # jobs whose job_cells need a refresh
        self.cache: dict[str, object] = {}  # derived data the kernels may rebuild at any time

    # ---------------------------------------------------------------- growth and registries
    def ensure(self, family: str, size: int) -> None:
        """Grow ``family``'s arrays (amortized doubling) so that ``size`` rows fit."""
        cap = self.cap[family]
        if size <= cap:
            return
        new_cap = max(size, 2 * cap)
        for name, fill in FAMILIES[family].items():
            old = getattr(self, name)
            if name == "cell_acc":
                new = np.full((old.shape[0], new_cap), fill, dtype=old.dtype)
                new[:, :cap] = old
            else:
                new = np.full((new_cap, *old.shape[1:]), fill, dtype=old.dtype)
                new[:cap] = old
            setattr(self, name, new)
        self.cap[family] = new_cap

    def register(self, family: str, index: dict[str, int], ids: list[str], key: str) -> int:
        """Dense index of ``key`` in a string registry, adding a row when it is new."""
        found = index.get(key)
        if found is not None:
            return found
        k = self.n[family]
        self.ensure(family, k + 1)
        index[key] = k
        ids.append(key)
        self.n[family] = k + 1
        return k

    def count(self, counter: str, k: int = 1) -> None:
        i = COUNTERS.index(counter)
        self.tick_counts[i] += k
        self.total_counts[i] += k

    @property
    def n_gpus(self) -> int:
        """Installed GPUs."""
        return int(np.count_nonzero(self.gpu_installed[: self.n["gpu"]]))

    def copy(self) -> TwinState:
        """An independent deep copy (for time travel and what-if runs)."""
        return _copy.deepcopy(self)

    def arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        """Every state array, live rows only, in a fixed order (for checksums and snapshots)."""
        out: dict[str, npt.NDArray[np.generic]] = {}
        for family, names in FAMILIES.items():
            live = self.n[family]
            for name in names:
                arr = getattr(self, name)
                out[name] = arr[:, :live] if name == "cell_acc" else arr[:live]
        out["tick_counts"] = self.tick_counts
        out["total_counts"] = self.total_counts
        return out
