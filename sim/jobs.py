"""Synchronous data-parallel training jobs: step timing, checkpoints, failures, restarts.

Each step every GPU i computes its share of the step's model FLOPs at its effective speed
(kernel efficiency x peak x current clock fraction), taking ``c_i`` seconds; it then waits for the
slowest peer (straggler wait, ``c_max - c_i``), then for the exposed part of the gradient
all-reduce (comm stall). So ``step = c_max + exposed``. Checkpoints and restarts hold all the
job's GPUs idle (allocated idle). A failure sends the job back to its last checkpoint; steps it
redoes are computed again but not credited (they add no progress), so the lost work shows up as
compute time without credited FLOPs.

Python loops here run per job and per step, never per GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from sim.comm import exposed_comm_s
from sim.config import JobConfig, ModelSpec

__all__ = ["Job", "JobPhase", "flops_per_token"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_EPS = 1e-9


def flops_per_token(m: ModelSpec) -> float:
    """Model FLOPs per token (PaLM appendix B): 6N + 12 L H Q T, the second term optional."""
    attention = 12.0 * m.layers * m.heads * m.head_dim * m.seq_len if m.attention else 0.0
    return 6.0 * m.params + attention


class JobPhase(IntEnum):
    PENDING = 0
    STEPPING = 1
    CHECKPOINT = 2
    RESTARTING = 3
    FINISHED = 4


JobEvent = tuple[float, str, dict[str, Any]]  # (event time s, event_type, fields)


@dataclass(slots=True, eq=False)
class Job:
    """One job's runtime state. ``idx`` are its GPUs; per-GPU arrays are aligned with it."""

    code: int
    job_id: str
    tenant: str
    cfg: JobConfig
    start_s: float
    end_s: float
    flops_step: float = 0.0
    idx: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    share: F64 = field(default_factory=lambda: np.zeros(0))
    speed: F64 = field(default_factory=lambda: np.zeros(0))
    share_out: list[float] | None = None  # work_share as emitted (None: equal)
    phase: JobPhase = JobPhase.PENDING
    step: int = 0
    high_water: int = 0
    ckpt_step: int = 0
    last_ckpt_s: float = 0.0
    until_s: float = 0.0
    step_start: float = 0.0
    step_end: float = 0.0
    c: F64 = field(default_factory=lambda: np.zeros(0))
    cmax: float = 0.0
    exposed: float = 0.0
    comm_s: float = 0.0
    campuses: int = 1
    shape: dict[str, int] = field(default_factory=dict)  # campus -> data-parallel ranks
    restarted: bool = False
    acc_compute: F64 = field(default_factory=lambda: np.zeros(0))
    acc_strag: F64 = field(default_factory=lambda: np.zeros(0))
    acc_comm: float = 0.0
    acc_idle: float = 0.0
    events: list[JobEvent] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.flops_step = self.cfg.tokens_per_step * flops_per_token(self.cfg.model)

    # -- membership ------------------------------------------------------------------------

    def assign(self, idx: I64, speed: F64) -> None:
        """Give the job ``idx`` with nominal speeds (FLOP/s at full clock) ``speed``."""
        self.idx = idx
        self.speed = speed
        if self.cfg.work_share == "speed":
            rel = np.round(speed / speed.min(), 4)
            self.share = rel / rel.sum()
            self.share_out = rel.tolist()
        else:
            self.share = np.full(idx.shape[0], 1.0 / idx.shape[0])
            self.share_out = None
        self.acc_compute = np.zeros(idx.shape[0])
        self.acc_strag = np.zeros(idx.shape[0])

    @property
    def active(self) -> bool:
        return self.phase not in (JobPhase.PENDING, JobPhase.FINISHED)

    @property
    def communicating(self) -> bool:
        return self.phase in (JobPhase.STEPPING, JobPhase.CHECKPOINT)

    # -- events ----------------------------------------------------------------------------

    def started_fields(self) -> dict[str, Any]:
        m = self.cfg.model
        mp = self.cfg.tensor * self.cfg.pipeline
        fields: dict[str, Any] = {
            "job_id": self.job_id,
            "tenant_id": self.tenant,
            "gpu_indices": self.idx,
            "model": {
                "params": int(m.params),
                "layers": m.layers,
                "heads": m.heads,
                "head_dim": m.head_dim,
                "seq_len": m.seq_len,
                "dtype": m.dtype,
                "attention": m.attention,
            },
            "parallelism": {
                "data": max(1, self.idx.shape[0] // mp),
                "tensor": self.cfg.tensor,
                "pipeline": self.cfg.pipeline,
            },
        }
        if self.share_out is not None:
            fields["work_share"] = self.share_out
        return fields

    def _emit(self, ts: float, event_type: str, fields: dict[str, Any]) -> None:
        self.events.append((ts, event_type, fields))

    # -- lifecycle -------------------------------------------------------------------------

    def begin(self, t: float, clock: F64, phase_fraction: float, ckpt_fraction: float) -> None:
        """Start stepping at ``t``. With ``phase_fraction`` > 0 the job is already in steady state
        at ``t``: it is that far into a step and ``ckpt_fraction`` of a checkpoint interval past
        its last checkpoint (the steps since then are counted, so a failure loses them)."""
        self.phase = JobPhase.STEPPING
        self._begin_step(t, clock)
        period = self.step_end - self.step_start
        shift = phase_fraction * period
        self.step_start -= shift
        self.step_end -= shift
        since = ckpt_fraction * self.cfg.checkpoint_interval_s
        self.last_ckpt_s = t - since
        self.ckpt_step = 0
        self.step = int(since // period) if period > 0 else 0
        self.high_water = self.step

    def _begin_step(self, t: float, clock: F64) -> None:
        self.c = self.flops_step * self.share / (self.speed * clock[self.idx])
        self.cmax = float(self.c.max())
        self.exposed = exposed_comm_s(self.comm_s, self.cfg.comm_overlap, self.cmax)
        self.step_start = t
        self.step_end = t + self.cmax + self.exposed

    def fail(self, t: float, failed: I64, reason: str) -> None:
        """A GPU of the job failed at ``t``: abort, go back to the last checkpoint, restart."""
        self._emit(
            t,
            "job_failed",
            {
                "job_id": self.job_id,
                "reason": reason,
                "failed_gpu_indices": failed,
            },
        )
        self.phase = JobPhase.RESTARTING
        self.until_s = t + self.cfg.restart_s
        self.step = self.ckpt_step
        self.restarted = True

    def finish(self, t: float) -> None:
        self.phase = JobPhase.FINISHED
        self._emit(t, "job_finished", {"job_id": self.job_id, "steps": self.step})

    # -- integration over one sample interval ------------------------------------------------

    def advance(self, t0: float, t1: float, clock: F64, credit: F64) -> None:
        """Integrate [t0, t1): fill ``acc_*`` (seconds per GPU), credit finished steps' FLOPs into
        ``credit`` (global per-GPU array), append events to :attr:`events`."""
        self.acc_compute.fill(0.0)
        self.acc_strag.fill(0.0)
        self.acc_comm = 0.0
        self.acc_idle = 0.0
        cur = t0
        while cur < t1 - _EPS:
            if self.phase == JobPhase.STEPPING:
                seg_end = min(self.step_end, t1)
                self._integrate(cur - self.step_start, seg_end - self.step_start)
                cur = seg_end
                if self.step_end <= t1 + _EPS:
                    self._complete_step(credit, clock)
            elif self.phase in (JobPhase.CHECKPOINT, JobPhase.RESTARTING):
                seg_end = min(self.until_s, t1)
                self.acc_idle += seg_end - cur
                cur = seg_end
                if self.until_s <= t1 + _EPS:
                    self._resume(clock)
            else:
                self.acc_idle += t1 - cur
                cur = t1

    def _integrate(self, u: float, v: float) -> None:
        c = self.c
        if v <= 0.0:
            return
        comp = np.minimum(c, v)
        comp -= u
        np.maximum(comp, 0.0, out=comp)
        self.acc_compute += comp
        if self.cmax > u:
            strag = np.maximum(c, u)
            np.subtract(min(v, self.cmax), strag, out=strag)
            np.maximum(strag, 0.0, out=strag)
            self.acc_strag += strag
        self.acc_comm += max(0.0, v - max(u, self.cmax))

    def _complete_step(self, credit: F64, clock: F64) -> None:
        t = self.step_end
        self.step += 1
        duration = self.step_end - self.step_start
        self._emit(
            t,
            "job_step",
            {
                "job_id": self.job_id,
                "step": self.step,
                "tokens": int(self.cfg.tokens_per_step),
                "duration_s": duration,
                "exposed_comm_s": min(self.exposed, duration),
            },
        )
        if self.step > self.high_water:
            credit[self.idx] += self.flops_step * self.share
            self.high_water = self.step
        if t >= self.end_s - _EPS:
            self.finish(t)
        elif t - self.last_ckpt_s >= self.cfg.checkpoint_interval_s - _EPS:
            self.phase = JobPhase.CHECKPOINT
            self.until_s = t + self.cfg.checkpoint_s
        else:
            self._begin_step(t, clock)

    def _resume(self, clock: F64) -> None:
        t = self.until_s
        if self.phase == JobPhase.CHECKPOINT:
            self.ckpt_step = self.step
            self.last_ckpt_s = t
            self._emit(
                t,
                "job_checkpoint",
                {
                    "job_id": self.job_id,
                    "step": self.step,
                    "duration_s": max(self.cfg.checkpoint_s, 1e-3),
                },
            )
        else:
            self.last_ckpt_s = t
            self._emit(t, "job_started", self.started_fields())
            self.restarted = False
        self.phase = JobPhase.STEPPING
        self._begin_step(t, clock)

    def finite_end(self) -> bool:
        return math.isfinite(self.end_s)
