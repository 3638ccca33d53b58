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

__all__ = ["FATAL_XIDS", "SampleSplit", "effective_mode", "fatal_xid", "split_samples"]

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
    compute_uj: F64
    comm_uj: F64


def split_samples(
    mode: I8,
    *,
    sm_active: F32,
    comm_frac: F32,
    mfu_floor: F32,
    interval_ns: F64,
    power_w: F32,
) -> SampleSplit:
    """Rule 4 above for STEP samples (zero compute and comm for every other mode).

    All outputs are float64 holding whole numbers, ready for exact ``bincount`` sums.
    """
    step = mode == Mode.STEP
    busy = np.float32(1.0) - comm_frac
    compute = np.maximum(np.minimum(np.clip(sm_active, 0.0, 1.0), busy), mfu_floor)
    comm = np.minimum(comm_frac, np.float32(1.0) - compute)
    compute = np.where(step, compute, np.float32(0.0))
    comm = np.where(step, comm, np.float32(0.0))
    energy = np.rint(power_w * interval_ns * 1e-3)
    compute_ns = np.rint(compute * interval_ns)
    comm_ns = np.minimum(np.rint(comm * interval_ns), interval_ns - compute_ns)
    compute_uj = np.rint(compute * energy)
    comm_uj = np.minimum(np.rint(comm * energy), energy - compute_uj)
    return SampleSplit(energy, compute_ns, comm_ns, compute_uj, comm_uj)
