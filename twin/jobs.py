"""Reducers for ``facility.jobs``: allocation, step credit, phases and straggler attribution.

Credited model FLOPs (DESIGN.md): each ``job_step``'s model FLOPs (tokens x FLOPs per token,
:mod:`twin.mfu`) are split over the job's GPUs in proportion to their ``work_share`` and land in
the tick that contains the step's end (``ts_ns``). A step whose number is not above the highest
step already credited is work redone after a failure: it is timed but not credited (it adds no
progress), as the simulator does.

Phases: ``job_started`` -> PENDING (allocated idle until the first step; a re-start of a job
that has stepped before resumes STEPPING at once), ``job_step`` -> STEPPING, ``job_failed`` ->
RESTARTING (its ``failed_gpu_indices`` go down), ``job_finished`` -> FINISHED (GPUs released).
``job_checkpoint`` is emitted when the checkpoint ends: samples inside
``[ts_ns - duration_s, ts_ns)`` are allocated idle.

Straggler attribution, per step: each GPU's compute share while stepping since its job's
previous step (``gpu_win_compute_ns / gpu_win_step_ns``, from the estimator's per-sample split)
times the step's duration is its compute time. The
GPUs within ``pace_tolerance`` (default 2%) of the longest compute set the pace; every other GPU
waited ``(pace - compute_i) x duration`` GPU-seconds, and the sum of those waits is the pacers'
straggler cost, split evenly among them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twin.batches import JobCheckpoint, JobFailed, JobFinished, JobStarted, JobStep, JobSubmitted
from twin.cells import (
    MAX_SHARE_CODES,
    job_active_members,
    reassign_cells,
    refresh_cell_params,
    refresh_dirty_jobs,
)
from twin.mfu import model_flops_per_token
from twin.state import JobPhase, Status, TwinState
from twin.topology import known_gpus

__all__ = [
    "attribute_stragglers",
    "on_job_checkpoint",
    "on_job_failed",
    "on_job_finished",
    "on_job_started",
    "on_job_step",
    "on_job_submitted",
    "top_costs",
]

I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]


def _register_job(state: TwinState, job_id: str, tenant_id: str) -> int:
    before = state.n["job"]
    job = state.register("job", state.job_index, state.job_ids, job_id)
    if job >= before:
        state.job_tenant_ids.append(tenant_id)
        state.job_members.append(np.zeros(0, np.int32))
        state.job_cells.append(np.zeros(0, np.int32))
        state.job_active.append(np.zeros(0, np.int32))
        state.job_cell_w.append(np.zeros(0, np.float64))
    else:
        state.job_tenant_ids[job] = tenant_id
    return job


def _job(state: TwinState, job_id: str) -> int | None:
    job = state.job_index.get(job_id)
    if job is None or state.job_phase[job] == JobPhase.FINISHED:
        state.count("unknown")
        return None
    return job


def on_job_submitted(state: TwinState, ev: JobSubmitted) -> None:
    job = _register_job(state, ev.job_id, ev.tenant_id)
    state.job_phase[job] = JobPhase.SUBMITTED
    state.job_gpus_requested[job] = ev.gpus_requested


def _share_codes(share: F64) -> tuple[F64, npt.NDArray[np.int16]]:
    """Distinct work shares as small codes (quantized to 1024 levels if there are more)."""
    values, code = np.unique(share, return_inverse=True)
    if values.size > MAX_SHARE_CODES:
        lo, hi = float(share.min()), float(share.max())
        steps = np.rint((share - lo) / (hi - lo) * (MAX_SHARE_CODES - 1))
        share = lo + steps * (hi - lo) / (MAX_SHARE_CODES - 1)
        values, code = np.unique(share, return_inverse=True)
    return share, code.astype(np.int16)


def on_job_started(state: TwinState, ev: JobStarted) -> None:
    job = _register_job(state, ev.job_id, ev.tenant_id)
    raw = np.asarray(ev.gpu_indices, dtype=np.int64)
    share_in = np.ones(raw.size)
    if ev.work_share is not None and len(ev.work_share) == raw.size:
        share_in = np.asarray(ev.work_share, np.float64)
    gpus = known_gpus(state, raw)
    # the share of each kept GPU is that of its first occurrence in the event
    uniq, first = np.unique(raw, return_index=True)
    share, code = _share_codes(share_in[first[np.searchsorted(uniq, gpus)]])
    old = job_active_members(state, job)
    released = np.setdiff1d(old, gpus).astype(np.int32)
    state.gpu_job[released] = -1
    state.gpu_share[released] = 0.0
    state.gpu_share_code[released] = 0
    state.gpu_job[gpus] = job
    state.gpu_share[gpus] = share
    state.gpu_share_code[gpus] = code
    state.job_members[job] = gpus
    model = ev.model
    state.job_flops_per_token[job] = model_flops_per_token(
        model.params,
        model.layers,
        model.heads,
        model.head_dim,
        model.seq_len,
        attention=model.attention,
    )
    state.job_fp8[job] = model.dtype == "fp8"
    state.job_gpus_requested[job] = max(int(state.job_gpus_requested[job]), int(raw.size))
    last_dur = float(state.job_last_dur_s[job])
    if state.job_steps[job] > 0 and last_dur > 0:  # a restart: stepping resumes at once
        state.job_phase[job] = JobPhase.STEPPING
        state.job_last_end_ns[job] = ev.ts_ns  # the step timeline restarts here
        state.job_deadline_ns[job] = ev.ts_ns + int(state.stall_factor * last_dur * 1e9)
    else:
        state.job_phase[job] = JobPhase.PENDING
    reassign_cells(state, np.concatenate([gpus, released]).astype(np.int32), ev.ts_ns)
    state.dirty_jobs.add(job)
    refresh_dirty_jobs(state)


def on_job_step(state: TwinState, ev: JobStep) -> None:
    job = _job(state, ev.job_id)
    if job is None:
        return
    refresh_dirty_jobs(state)
    duration = float(ev.duration_s)
    flops = float(ev.tokens) * float(state.job_flops_per_token[job])
    if ev.step > state.job_steps[job]:  # not a step redone after a failure
        cells, weight = state.job_cells[job], state.job_cell_w[job]
        state.cell_flops[cells] += flops * weight
        state.job_flops[job] += flops
        state.job_tokens[job] += float(ev.tokens)
        state.job_steps[job] = ev.step
    attribute_stragglers(state, job, duration)
    state.job_phase[job] = JobPhase.STEPPING
    state.job_rate_flops[job] = flops / duration if duration > 0 else 0.0
    state.job_comm_frac[job] = min(max(ev.exposed_comm_s / duration, 0.0), 1.0)
    state.job_last_end_ns[job] = ev.ts_ns
    state.job_last_dur_s[job] = duration
    state.job_deadline_ns[job] = ev.ts_ns + int(state.stall_factor * duration * 1e9)
    refresh_cell_params(state, state.job_cells[job])  # its cells did not change, their inputs did


def on_job_checkpoint(state: TwinState, ev: JobCheckpoint) -> None:
    job = _job(state, ev.job_id)
    if job is None:
        return
    start = ev.ts_ns - int(ev.duration_s * 1e9)
    state.job_ckpt_start_ns[job] = start
    state.job_ckpt_end_ns[job] = ev.ts_ns
    # the next step starts at the checkpoint's end: allow it the usual grace
    grace = int(state.stall_factor * float(state.job_last_dur_s[job]) * 1e9)
    state.job_deadline_ns[job] = max(int(state.job_deadline_ns[job]), ev.ts_ns + grace)
    # the step timeline resumes at the checkpoint's end
    state.job_last_end_ns[job] = max(int(state.job_last_end_ns[job]), ev.ts_ns)
    refresh_dirty_jobs(state)
    refresh_cell_params(state, state.job_cells[job])


def on_job_failed(state: TwinState, ev: JobFailed) -> None:
    job = _job(state, ev.job_id)
    if job is None:
        return
    state.job_phase[job] = JobPhase.RESTARTING
    failed = known_gpus(state, ev.failed_gpu_indices)
    if failed.size:
        state.gpu_status[failed] = Status.FAILED
        state.gpu_last_compute[failed] = np.nan
        reassign_cells(state, failed, ev.ts_ns)
    state.dirty_jobs.add(job)
    refresh_dirty_jobs(state)


def on_job_finished(state: TwinState, ev: JobFinished) -> None:
    job = _job(state, ev.job_id)
    if job is None:
        return
    gpus = job_active_members(state, job)
    state.job_phase[job] = JobPhase.FINISHED
    state.gpu_job[gpus] = -1
    state.gpu_share[gpus] = 0.0
    state.gpu_share_code[gpus] = 0
    reassign_cells(state, gpus, ev.ts_ns)
    state.dirty_jobs.add(job)
    refresh_dirty_jobs(state)


def attribute_stragglers(state: TwinState, job: int, duration_s: float) -> None:
    """Charge one step's straggler wait to the GPUs that set its pace (module docstring)."""
    members = state.job_active[job]  # current: the caller refreshed dirty jobs
    if members.size < 2 or not duration_s > 0:
        return
    stepped = state.gpu_win_step_ns[members]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = state.gpu_win_compute_ns[members] / stepped
    state.gpu_win_compute_ns[members] = 0.0  # the next window starts at this step
    state.gpu_win_step_ns[members] = 0.0
    seen = stepped > 0
    if np.count_nonzero(seen) < 2:
        return
    pace = float(share[seen].max())
    if pace <= 0.0:
        return
    pacer = seen & (share >= pace * (1.0 - state.pace_tolerance))
    waiting = seen & ~pacer
    if not waiting.any():
        return
    waited = float((pace - share[waiting].astype(np.float64)).sum()) * duration_s
    pacers = members[pacer]
    each = waited / pacers.size
    state.gpu_strag_s[pacers] += each
    state.strag_any = True
    state.strag_top = top_costs(state.gpu_strag_s, state.strag_top, pacers, state.top_n)
    racks, per_rack = np.unique(state.gpu_rack[pacers], return_counts=True)
    state.rack_strag_s[racks] += each * per_rack
    state.strag_top_racks = top_costs(state.rack_strag_s, state.strag_top_racks, racks, state.top_n)
    cells, counts = np.unique(state.gpu_cell[pacers], return_counts=True)
    state.cell_strag_s[cells] += each * counts


def top_costs(
    costs: F64, top: I32, grown: npt.NDArray[np.integer], n: int
) -> npt.NDArray[np.int32]:
    """The ``n`` items with the highest ``costs`` (ties: lowest index), given the previous top
    and the items whose cost just grew (sorted, unique). Costs only grow within a tick, so only
    those items can enter: the new top is the best of the old top and the best of ``grown``."""
    cost = costs[grown]
    if grown.size > n:
        kth = np.partition(cost, grown.size - n)[grown.size - n]
        above = grown[cost > kth]
        tied = grown[cost == kth][: n - above.size]
        grown = np.concatenate([above, tied])
    cand = np.union1d(top, grown)
    order = np.lexsort((cand, -costs[cand]))[:n]
    out: npt.NDArray[np.int32] = cand[order].astype(np.int32)
    return out
