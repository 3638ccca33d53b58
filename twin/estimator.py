"""The time-fraction estimator: what each GPU sample's interval was spent on.

Telemetry cannot see "waiting at a barrier" (DESIGN.md); the twin estimates the six fractions of
every GPU sample from what a real facility reports -- DCGM activity counters per GPU and the
training framework's step events -- and the state the events built:

1. **down** -- the GPU's status is failed or drained (``gpu_status``, or a ``job_failed`` naming
   it), or the sample itself carries a fatal XID (:data:`FATAL_XIDS`: the codes NVIDIA documents
   as needing a GPU reset or a node drain). The whole interval is down.
2. **unallocated** -- healthy and no job holds the GPU.
3. **allocated_idle** -- a job holds the GPU but is not stepping: started and not yet stepped,
   restarting after ``job_failed``, inside an announced checkpoint window
   ``[job_checkpoint.ts_ns, ts_ns + duration_s)``, or *stalled*: the sample is later than
   ``stall_factor`` (default 1.5) step durations after the job's latest step ended (a
   checkpoint, a data stall or a hang the framework did not announce).
4. **stepping** -- otherwise, and the interval splits three ways, with ``c`` the exposed
   communication share of the job's latest step (``exposed_comm_s / duration_s``) and ``f``
   this GPU's MFU in that step (its credited share of the step's model FLOPs over its peak
   FLOPs for the step's duration)::

       compute        = max(clip(sm_active, 0, 1 - c), min(f, 1))
       comm_stall     = min(c, 1 - compute)
       straggler_wait = 1 - compute - comm_stall

   ``sm_active`` (DCGM_FI_PROF_SM_ACTIVE) is the share of the interval the SMs had work: a GPU
   that finishes its share of the step early goes quiet until the slowest peer arrives, so the
   rest of the non-communication time is straggler wait. Compute never drops below the MFU the
   GPU demonstrably delivered, so kernel inefficiency (compute - MFU) stays >= 0 per step.

   *Phase refinement* (what the fold uses): steps of large jobs last longer than a telemetry
   interval, so a sample sits in the compute phase or in the exposed all-reduce, not in an
   average of both. Taking the latest step as the shape of the steps around it (compute, then
   ``exposed_comm_s`` of communication, period ``duration_s``, aligned on its end), ``c`` becomes
   the share of this interval inside communication phases (:func:`comm_share`) and the floor
   ``f x (1 - c_interval) / (1 - c)``. Over whole steps both average to the rule above; per
   sample they follow the step's timeline.

   *Idle inside a step*: DCGM_FI_DEV_GPU_UTIL is the share of the interval with any kernel
   resident -- compute, NCCL collectives and barrier spins all count. The rest of a stepping
   job's interval had no kernel at all (a checkpoint or data stall the framework has not
   reported yet) and is allocated idle; compute, comm stall and straggler wait share the busy
   part (``busy = max(gpu_util, sm_active)``, which replaces the 1 above). Errors against the
   simulator's truth are in bench/RESULTS.md.

The fractions are turned into integer nanoseconds of the interval (compute and comm rounded,
straggler the remainder), so they sum to the interval exactly; board energy (power x interval,
integer microjoules) is split the same way. Integers make the per-cell accumulators exact under
any batch split (event-sourcing rule 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from twin.state import Mode

__all__ = [
    "FATAL_XIDS",
    "SampleSplit",
    "comm_share",
    "effective_mode",
    "fatal_xid",
    "split_samples",
]

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

#: XID codes that take a GPU out of service (NVIDIA XID catalogue: reset or drain required).
FATAL_XIDS: Final[frozenset[int]] = frozenset({48, 62, 63, 64, 74, 79, 94, 95, 119, 120, 140})
_XID_TABLE: Final = np.zeros(256, np.bool_)
_XID_TABLE[sorted(FATAL_XIDS)] = True


def fatal_xid(xid: I32) -> B:
    """True where the sample's last XID is fatal."""
    return _XID_TABLE[np.clip(xid, 0, 255)]


def effective_mode(
    cell_mode: I8,
    *,
    ts_ns: I64,
    deadline_ns: I64,
    ckpt_start_ns: I64,
    ckpt_end_ns: I64,
    xid: I32,
) -> I8:
    """Rules 1-4 above, per sample: the cell's mode, demoted to ALLOC_IDLE when the job is
    stalled or checkpointing at the sample's time, and to DOWN on a fatal XID."""
    stalled = (ts_ns >= deadline_ns) | ((ts_ns >= ckpt_start_ns) & (ts_ns < ckpt_end_ns))
    mode = np.where((cell_mode == Mode.STEP) & stalled, np.int8(Mode.ALLOC_IDLE), cell_mode)
    return np.where(fatal_xid(xid), np.int8(Mode.DOWN), mode).astype(np.int8, copy=False)


@dataclass(frozen=True, slots=True, eq=False)
class SampleSplit:
    """Integer split of each sample: ns of the interval and uJ of board energy."""

    energy_uj: F64  # power x interval, whole microjoules
    compute_ns: F64
    comm_ns: F64
    idle_ns: F64  # allocated idle inside a stepping job's interval (no kernel resident)
    compute_uj: F64
    comm_uj: F64
    idle_uj: F64


def comm_share(since_end_s: F64, interval_s: F64, step_s: F64, exposed_s: F64) -> F64:
    """Share of each sample interval that falls in its job's exposed-communication phases.

    The job's latest step (duration ``step_s``, exposed communication ``exposed_s``, ended at
    ``E``) is taken as the shape of every step around it: each period ``[E + k d, E + (k+1) d)``
    computes first and communicates in its last ``exposed_s`` seconds. ``since_end_s`` is the
    sample interval's start minus ``E`` (either sign). Averaged over whole steps this is exactly
    ``exposed_s / step_s``.
    """
    d = np.where(step_s > 0, step_s, 1.0)
    e = np.where(step_s > 0, np.minimum(exposed_s, d), 0.0)
    a = np.mod(since_end_s, d)  # phase of the interval's start, in [0, d)
    b = a + interval_s
    before = np.maximum(a - (d - e), 0.0)  # comm seconds in [0, a) of a's period
    periods = np.floor(b / d)
    upto_b = periods * e + np.maximum(b - periods * d - (d - e), 0.0)
    share: F64 = np.clip((upto_b - before) / interval_s, 0.0, 1.0)
    return share


def split_samples(
    mode: I8,
    *,
    sm_active: F32,
    comm_frac: F32,
    mfu_floor: F32,
    interval_ns: F64,
    power_w: F32,
    comm_phase: F64 | None = None,
    gpu_util_pct: F32 | None = None,
) -> SampleSplit:
    """Rule 4 above for STEP samples (zero compute and comm for every other mode).

    ``comm_phase`` (optional, from :func:`comm_share`) replaces the step-average communication
    share ``comm_frac`` with the share of this very interval; the MFU floor then scales to the
    interval's computing part (``f x (1 - comm_phase) / (1 - c)``), so both still average to the
    step's values. ``gpu_util_pct`` (optional) bounds the busy share: time with no kernel
    resident at all is allocated idle. All outputs are float64 holding whole numbers, ready for
    exact ``bincount``.
    """
    step = mode == Mode.STEP
    if comm_phase is None:
        c = comm_frac.astype(np.float64)
        floor = mfu_floor.astype(np.float64)
    else:
        c = comm_phase
        busy_avg = 1.0 - comm_frac.astype(np.float64)
        floor = np.where(busy_avg > 0, mfu_floor * (1.0 - c) / np.maximum(busy_avg, 1e-9), 0.0)
    sm = np.clip(sm_active, 0.0, 1.0)
    if gpu_util_pct is None:
        busy = np.ones_like(c)
    else:  # SMs active imply a kernel resident: busy >= sm_active
        busy = np.maximum(np.clip(gpu_util_pct * np.float32(0.01), 0.0, 1.0), sm)
    compute = np.minimum(np.maximum(np.minimum(sm, busy - c), floor), busy)
    comm = np.minimum(c, busy - compute)
    idle = np.where(step, 1.0 - busy, 0.0)
    compute = np.where(step, compute, 0.0)
    comm = np.where(step, comm, 0.0)
    energy = np.rint(power_w * interval_ns * 1e-3)
    compute_ns = np.rint(compute * interval_ns)
    comm_ns = np.minimum(np.rint(comm * interval_ns), interval_ns - compute_ns)
    idle_ns = np.minimum(np.rint(idle * interval_ns), interval_ns - compute_ns - comm_ns)
    compute_uj = np.rint(compute * energy)
    comm_uj = np.minimum(np.rint(comm * energy), energy - compute_uj)
    idle_uj = np.minimum(np.rint(idle * energy), energy - compute_uj - comm_uj)
    return SampleSplit(energy, compute_ns, comm_ns, idle_ns, compute_uj, comm_uj, idle_uj)
