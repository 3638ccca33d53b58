"""Reducers for ``facility.leases``: which tenant owns which GPUs, and on what terms.

- ``lease_signed`` names its GPUs (``gpu_indices``) or asks for counts per model
  (``gpu_counts``): then the lowest-index installed GPUs of that model no lease holds are taken,
  and a shortfall waits for racks installed later (filled in lease order).
- Revenue accrues per second at ``usd_per_month / (730 x 3600)`` over
  ``[start_ns, effective end)``; ``lease_notice`` moves the effective end, ``lease_ended`` ends it
  at the event's time and releases the GPUs. A lease whose effective end has passed releases its
  GPUs when the tick containing that end closes.
- A GPU belongs to the tenant of the lease holding it; GPUs no lease holds belong to the
  tenant "unleased" (tenant 0).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twin.batches import LeaseEnded, LeaseNotice, LeaseSigned
from twin.cells import reassign_cells
from twin.gpus import model_code
from twin.state import TwinState
from twin.topology import known_gpus

__all__ = [
    "assign_lease_gpus",
    "expire_leases",
    "fill_pending_leases",
    "on_lease_ended",
    "on_lease_notice",
    "on_lease_signed",
    "release_lease_gpus",
]

I32 = npt.NDArray[np.int32]


def assign_lease_gpus(state: TwinState, lease: int, gpus: I32, ts_ns: int) -> None:
    """Give ``gpus`` to ``lease`` (taking them from any lease that held them)."""
    if gpus.size == 0:
        return
    prev = state.gpu_lease[gpus]
    prev = prev[(prev >= 0) & (prev != lease)]
    if prev.size:
        np.subtract.at(state.lease_n_gpus, prev, 1)
    state.lease_n_gpus[lease] += int(np.count_nonzero(state.gpu_lease[gpus] != lease))
    state.gpu_lease[gpus] = lease
    reassign_cells(state, gpus, ts_ns)


def release_lease_gpus(state: TwinState, lease: int, ts_ns: int) -> None:
    n_gpu = state.n["gpu"]
    gpus = np.flatnonzero(state.gpu_lease[:n_gpu] == lease).astype(np.int32)
    state.lease_pending.pop(lease, None)
    if gpus.size == 0:
        return
    state.gpu_lease[gpus] = -1
    state.lease_n_gpus[lease] = 0
    reassign_cells(state, gpus, ts_ns)


def on_lease_signed(state: TwinState, ev: LeaseSigned) -> None:
    tenant = state.register("tenant", state.tenant_index, state.tenant_ids, ev.tenant_id)
    lease = state.register("lease", state.lease_index, state.lease_ids, ev.lease_id)
    release_lease_gpus(state, lease, ev.ts_ns)  # re-signing replaces the terms and the GPUs
    state.lease_tenant[lease] = tenant
    state.lease_usd_per_month[lease] = ev.usd_per_month
    state.lease_start_ns[lease] = ev.start_ns
    state.lease_end_ns[lease] = ev.end_ns
    state.lease_eff_end_ns[lease] = ev.end_ns
    state.lease_notice_days[lease] = ev.notice_days
    if ev.gpu_indices is not None:
        assign_lease_gpus(state, lease, known_gpus(state, ev.gpu_indices), ev.ts_ns)
        return
    n_gpu = state.n["gpu"]
    pending: list[tuple[int, int]] = []
    for name, count in ev.gpu_counts or ():
        try:
            model = model_code(name)
        except ValueError:
            state.count("unknown")
            continue
        free = np.flatnonzero(
            state.gpu_installed[:n_gpu]
            & (state.gpu_model[:n_gpu] == model)
            & (state.gpu_lease[:n_gpu] < 0)
        )[:count].astype(np.int32)
        assign_lease_gpus(state, lease, free, ev.ts_ns)
        if count > free.size:
            pending.append((model, count - int(free.size)))
    if pending:
        state.lease_pending[lease] = pending


def fill_pending_leases(state: TwinState, gpus: I32, ts_ns: int) -> None:
    """Newly installed ``gpus`` go to leases still short of their GPU counts."""
    for lease in sorted(state.lease_pending):
        still: list[tuple[int, int]] = []
        for model, count in state.lease_pending[lease]:
            free = gpus[(state.gpu_model[gpus] == model) & (state.gpu_lease[gpus] < 0)][:count]
            assign_lease_gpus(state, lease, free, ts_ns)
            if count > free.size:
                still.append((model, count - int(free.size)))
        if still:
            state.lease_pending[lease] = still
        else:
            del state.lease_pending[lease]


def _lease(state: TwinState, lease_id: str) -> int | None:
    lease = state.lease_index.get(lease_id)
    if lease is None:
        state.count("unknown")
    return lease


def on_lease_notice(state: TwinState, ev: LeaseNotice) -> None:
    lease = _lease(state, ev.lease_id)
    if lease is not None:
        state.lease_eff_end_ns[lease] = ev.effective_end_ns


def on_lease_ended(state: TwinState, ev: LeaseEnded) -> None:
    lease = _lease(state, ev.lease_id)
    if lease is None:
        return
    state.lease_eff_end_ns[lease] = min(int(state.lease_eff_end_ns[lease]), ev.ts_ns)
    release_lease_gpus(state, lease, ev.ts_ns)


def expire_leases(state: TwinState, end_ns: int) -> None:
    """Release the GPUs of leases whose effective end is at or before ``end_ns``."""
    n = state.n["lease"]
    done = np.flatnonzero((state.lease_eff_end_ns[:n] <= end_ns) & (state.lease_n_gpus[:n] > 0))
    for lease in done.tolist():
        release_lease_gpus(state, lease, end_ns)
