"""Cells: groups of GPUs that share (rack, job, work-share class, lease, status).

Inside a cell every input of the kernels is either uniform (GPU model and peak FLOP/s, the job
and its phase, the share of the job's work per GPU, the tenant, the status) or additive (sample
time, board energy, credited FLOPs). So:

- telemetry folds into per-cell accumulators (one gather of ``gpu_cell`` per sample, then
  integer ``bincount``\\ s), and
- a tick's kernels run on the cells (a few thousand at 220,000 GPUs) instead of every GPU.

A cell's membership is its number of GPUs, ``cell_n``, plus a correction in GPU-ns for GPUs
that joined or left during the open tick, so the GPU-time of a cell over a tick is
``cell_n * dt + cell_corr_ns`` exactly. Cells are only created during a tick (a GPU moving to
a key not seen yet); empty cells are dropped and the rest renumbered when the tick closes.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from twin.gpus import MODEL_NAMES, gpu_spec
from twin.state import FAMILIES, JobPhase, Mode, Status, TwinState

__all__ = [
    "compact_cells",
    "job_active_members",
    "pack_keys",
    "peak_flops_per_model",
    "reassign_cells",
    "refresh_cell_params",
    "refresh_dirty_jobs",
    "refresh_job_cells",
]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

# key bit layout (int64, non-negative): rack 20 | job+1 20 | share code 10 | lease+1 11 | status 2
_RACK_BITS: Final = 20
_JOB_BITS: Final = 20
_SHARE_BITS: Final = 10
_LEASE_BITS: Final = 11
_STATUS_BITS: Final = 2
MAX_SHARE_CODES: Final = 1 << _SHARE_BITS

#: Peak dense FLOP/s per model code, BF16 and FP8 (FP8 falls back to BF16 where absent).
_PEAK_BF16: Final = np.array([gpu_spec(m).peak_flops("bf16") for m in MODEL_NAMES])
_PEAK_FP8: Final = np.array(
    [
        gpu_spec(m).peak_flops("fp8" if gpu_spec(m).fp8_tflops is not None else "bf16")
        for m in MODEL_NAMES
    ]
)
_CELL_FILL: Final = FAMILIES["cell"]
_CELL_FIELDS: Final = tuple(_CELL_FILL)


def peak_flops_per_model(fp8: bool = False) -> F64:
    """Dense peak FLOP/s indexed by model code (FP8 falls back to BF16 where absent)."""
    return (_PEAK_FP8 if fp8 else _PEAK_BF16).copy()


def pack_keys(
    rack: npt.NDArray[np.integer],
    job: npt.NDArray[np.integer],
    share_code: npt.NDArray[np.integer],
    lease: npt.NDArray[np.integer],
    status: npt.NDArray[np.integer],
) -> I64:
    """One int64 key per GPU from its cell coordinates (job and lease may be -1)."""
    if rack.size and (int(rack.max()) >= 1 << _RACK_BITS or int(job.max()) + 1 >= 1 << _JOB_BITS):
        raise OverflowError("more racks or jobs than the cell key can hold")
    if lease.size and int(lease.max()) + 1 >= 1 << _LEASE_BITS:
        raise OverflowError("more leases than the cell key can hold")
    key = rack.astype(np.int64)
    key = (key << _JOB_BITS) | (job.astype(np.int64) + 1)
    key = (key << _SHARE_BITS) | share_code.astype(np.int64)
    key = (key << _LEASE_BITS) | (lease.astype(np.int64) + 1)
    return (key << _STATUS_BITS) | status.astype(np.int64)


def _elapsed_ns(state: TwinState, ts_ns: int) -> int:
    """How far into the open tick ``ts_ns`` is, clamped to [0, tick length]."""
    if state.tick_start_ns < 0:
        return 0
    return min(max(ts_ns - state.tick_start_ns, 0), state.tick_end_ns - state.tick_start_ns)


def reassign_cells(state: TwinState, gpus: I32, ts_ns: int) -> None:
    """Recompute the cell of each GPU in ``gpus`` (unique, installed) from its coordinates.

    Called by the reducers after they change a GPU's rack, job, share, lease or status at event
    time ``ts_ns``. GPU-time before ``ts_ns`` stays with the old cell, after it with the new one.
    """
    if gpus.size == 0:
        return
    gpus = gpus.astype(np.intp, copy=False)
    keys = pack_keys(
        state.gpu_rack[gpus],
        state.gpu_job[gpus],
        state.gpu_share_code[gpus],
        state.gpu_lease[gpus],
        state.gpu_status[gpus],
    )
    uniq, inv = np.unique(keys, return_inverse=True)
    ids = np.empty(uniq.shape[0], np.int32)
    created: list[int] = []
    for k, key in enumerate(uniq.tolist()):
        cid = state.cell_index.get(key)
        if cid is None:
            cid = _new_cell(state, key, int(gpus[int(np.argmax(inv == k))]))
            created.append(cid)
        ids[k] = cid
    new = ids[inv]
    old = state.gpu_cell[gpus]
    moved = old != new
    if not moved.any():
        return
    elapsed = _elapsed_ns(state, ts_ns)
    size = state.n["cell"]
    gone = np.bincount(old[moved & (old >= 0)], minlength=size)
    came = np.bincount(new[moved], minlength=size)
    state.cell_n[:size] += came - gone
    state.cell_corr_ns[:size] += (gone - came) * elapsed
    state.gpu_cell[gpus] = new
    state.cells_version += 1
    jobs = np.unique(np.concatenate([state.cell_job[old[old >= 0]], state.cell_job[new]]))
    state.dirty_jobs.update(int(j) for j in jobs.tolist() if j >= 0)
    if created:
        refresh_cell_params(state, np.asarray(created, np.int32))


def _new_cell(state: TwinState, key: int, gpu: int) -> int:
    cid = state.n["cell"]
    state.ensure("cell", cid + 1)
    state.n["cell"] = cid + 1
    state.cell_index[key] = cid
    state.cell_key[cid] = key
    state.cell_rack[cid] = state.gpu_rack[gpu]
    state.cell_job[cid] = state.gpu_job[gpu]
    state.cell_lease[cid] = state.gpu_lease[gpu]
    state.cell_status[cid] = state.gpu_status[gpu]
    state.cell_share[cid] = state.gpu_share[gpu]
    state.cell_n[cid] = 0
    state.cell_corr_ns[cid] = 0
    state.cell_acc[:, cid] = 0
    state.cell_flops[cid] = 0.0
    state.cell_carry[cid] = 0.0
    state.cell_strag_s[cid] = 0.0
    return cid


def refresh_cell_params(state: TwinState, cells: I32) -> None:
    """Recompute the estimator's per-cell inputs (mode, comm fraction, MFU floor, stepping
    window) and the cell's peak FLOP/s from its job and status. Vectorized over ``cells``."""
    if cells.size == 0:
        return
    cells = cells.astype(np.intp, copy=False)
    job = state.cell_job[cells].astype(np.intp)
    has_job = job >= 0
    jj = np.where(has_job, job, 0)
    model = state.rack_model[state.cell_rack[cells]].astype(np.intp)
    fp8 = has_job & state.job_fp8[jj]
    peak = np.where(fp8, _PEAK_FP8[model], _PEAK_BF16[model])
    state.cell_peak[cells] = peak
    phase = np.where(has_job, state.job_phase[jj], JobPhase.FINISHED)
    mode = np.where(
        state.cell_status[cells] != Status.UP,
        Mode.DOWN,
        np.where(
            ~has_job,
            Mode.UNALLOC,
            np.where(phase == JobPhase.STEPPING, Mode.STEP, Mode.ALLOC_IDLE),
        ),
    )
    state.cell_mode[cells] = mode.astype(np.int8)
    state.cell_comm[cells] = np.where(has_job, state.job_comm_frac[jj], 0.0)
    share_total = state.job_share_total[jj]
    rate = state.job_rate_flops[jj]
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(
            has_job & (share_total > 0),
            rate * state.cell_share[cells] / np.where(share_total > 0, share_total, 1.0) / peak,
            0.0,
        )
    state.cell_floor[cells] = np.clip(floor, 0.0, 1.0)
    state.cell_deadline_ns[cells] = np.where(has_job, state.job_deadline_ns[jj], 0)
    state.cell_step_end_ns[cells] = np.where(has_job, state.job_last_end_ns[jj], 0)
    state.cell_step_s[cells] = np.where(has_job, state.job_last_dur_s[jj], 0.0)
    state.cell_ckpt_start_ns[cells] = np.where(has_job, state.job_ckpt_start_ns[jj], 0)
    state.cell_ckpt_end_ns[cells] = np.where(has_job, state.job_ckpt_end_ns[jj], 0)


def job_active_members(state: TwinState, job: int) -> I32:
    """The GPUs currently allocated to ``job`` (its ``job_started`` list minus GPUs taken away)."""
    members = state.job_members[job]
    active: I32 = members[state.gpu_job[members] == job]
    return active


def refresh_job_cells(state: TwinState, job: int) -> None:
    """Recompute a job's cells and the fraction of its work each cell gets."""
    members = job_active_members(state, job)
    state.job_active[job] = members
    if members.size == 0:
        state.job_cells[job] = np.zeros(0, np.int32)
        state.job_cell_w[job] = np.zeros(0, np.float64)
        state.job_share_total[job] = 0.0
        return
    cells, counts = np.unique(state.gpu_cell[members], return_counts=True)
    share = state.cell_share[cells] * counts
    total = float(share.sum())
    state.job_share_total[job] = total
    state.job_cells[job] = cells.astype(np.int32)
    state.job_cell_w[job] = share / total if total > 0 else share


def refresh_dirty_jobs(state: TwinState) -> None:
    """Refresh every job whose cells changed, then their cells' estimator inputs."""
    if not state.dirty_jobs:
        return
    for job in sorted(state.dirty_jobs):
        refresh_job_cells(state, job)
        refresh_cell_params(state, state.job_cells[job])
    state.dirty_jobs.clear()


def compact_cells(state: TwinState) -> None:
    """Drop empty cells and renumber the rest by tenant, job, then topology (campus, hall, GPU
    model, rack), so the kernels' tenant and job sums are runs that need no gathers (called
    when a tick closes, after the accumulators were reset). Credited-FLOP carry of a dropped
    cell is counted in ``flops_dropped``. A no-op when no cell changed since the last call."""
    if state.cells_compacted == state.cells_version:
        return
    state.cells_compacted = state.cells_version + 1  # the renumbering below bumps the version
    size = state.n["cell"]
    live = state.cell_n[:size] > 0
    order = np.flatnonzero(live)
    rack = state.cell_rack[order]
    hall = state.rack_hall[rack]
    lease = state.cell_lease[order]
    tenant = np.where(lease >= 0, state.lease_tenant[np.maximum(lease, 0)], 0)
    order = order[
        np.lexsort(
            (
                state.cell_key[order],
                rack,
                state.rack_model[rack],
                hall,
                state.hall_campus[hall],
                state.cell_job[order],
                tenant,
            )
        )
    ]
    if order.size == size and np.array_equal(order, np.arange(size)):
        state.cells_compacted = state.cells_version
        return
    state.flops_dropped += float(state.cell_carry[:size][~live].sum())
    remap = np.full(size, -1, np.int32)
    remap[order] = np.arange(order.size, dtype=np.int32)
    for name in _CELL_FIELDS:
        arr = getattr(state, name)
        if name == "cell_acc":
            arr[:, : order.size] = arr[:, order]
            arr[:, order.size : size] = 0
        else:
            arr[: order.size] = arr[order]
            arr[order.size : size] = _CELL_FILL[name]
    state.n["cell"] = int(order.size)
    n_gpu = state.n["gpu"]
    cell = state.gpu_cell[:n_gpu]
    state.gpu_cell[:n_gpu] = np.where(cell >= 0, remap[np.maximum(cell, 0)], -1)
    state.cell_index = {int(k): i for i, k in enumerate(state.cell_key[: order.size].tolist())}
    for job in range(state.n["job"]):
        cells = state.job_cells[job]
        if cells.size:
            mapped = remap[cells]
            keep = mapped >= 0
            state.job_cells[job] = mapped[keep]
            state.job_cell_w[job] = state.job_cell_w[job][keep]
    state.cells_version += 1
