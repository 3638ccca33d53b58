"""Ticks on event time: closing a tick runs the kernels and resets the open-tick accumulators.

:func:`fold_events` is the pure driver offline replay and the tests use: it folds batches in log
order and closes the open tick whenever an accepted event's tick time
(:func:`twin.reducers.tick_time`: ``ts_ns``, or the start of the interval a reading stands for)
reaches the tick's end
(splitting telemetry batches at that message), so it gives the same ticks and the same state
however the log is cut into batches. When the next event lies beyond the following tick, the
empty ticks in between are skipped (a gap in event time produces no ticks).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from twin.batches import Batch, TelemetryBatch
from twin.cells import compact_cells, refresh_dirty_jobs
from twin.kernels import compute_tick
from twin.leases import expire_leases
from twin.reducers import accept_event, fold_event, open_tick, telemetry_tick_times, tick_time
from twin.results import TickResult
from twin.state import TwinState
from twin.telemetry import accept_messages, fold_telemetry

__all__ = ["close_tick", "fold_events"]


def close_tick(
    state: TwinState, end_ns: int | None = None, racks: npt.NDArray[np.bool_] | None = None
) -> TickResult:
    """Close the open tick at ``end_ns`` (default: its scheduled end): run every kernel, roll the
    cumulative ledgers forward, reset the accumulators, and open the next tick at ``end_ns``.

    ``racks``: the racks this worker owns (a bool array over the state's racks; None: all).
    The result then holds the owned racks' sums only (its ``partial`` is what
    :func:`twin.kernels.merge_partials` merges); the state evolves exactly as without
    ``racks`` (FLOP carry, lease revenue, cumulative money per tenant, resets), which takes a
    second, whole-facility run of the kernels for the tenants' cumulative money."""
    if state.tick_start_ns < 0:
        raise ValueError("no tick is open: fold an event first")
    start = state.tick_start_ns
    end = state.tick_end_ns if end_ns is None else int(end_ns)
    if end <= start:
        raise ValueError(f"tick end {end} is not after its start {start}")
    refresh_dirty_jobs(state)
    result, carry, lease_revenue = compute_tick(state, start, end, racks)
    n_cell, n_lease = state.n["cell"], state.n["lease"]
    # cumulative money per tenant and lease
    whole = result if racks is None else compute_tick(state, start, end)[0]
    tenants = whole.scopes["tenant"]
    n_tenant = len(tenants.ids)
    state.tenant_revenue_usd[:n_tenant] += tenants.column("revenue_usd")
    state.tenant_energy_usd[:n_tenant] += tenants.column("energy_usd")
    state.tenant_useful_flops[:n_tenant] += tenants.column("flops")
    state.lease_revenue_usd[:n_lease] += lease_revenue
    # reset the open-tick accumulators
    state.cell_acc[:, :n_cell] = 0
    state.cell_flops[:n_cell] = 0.0
    state.cell_carry[:n_cell] = carry
    state.cell_strag_s[:n_cell] = 0.0
    state.cell_corr_ns[:n_cell] = 0
    if state.strag_any:
        state.gpu_strag_s[: state.n["gpu"]] = 0.0
        state.rack_strag_s[: state.n["rack"]] = 0.0
        state.strag_top = np.zeros(0, np.int32)
        state.strag_top_racks = np.zeros(0, np.int32)
        state.strag_any = False
    n_rack, n_hall = state.n["rack"], state.n["hall"]
    state.rack_pdu_j[:n_rack] = 0.0
    state.rack_pdu_seen[:n_rack] = False
    state.hall_switchgear_j[:n_hall] = 0.0
    state.meter_total_j = 0.0
    state.meter_it_j = 0.0
    state.chiller_j = 0.0
    state.tick_counts[:] = 0
    state.tick_start_ns = end
    state.tick_end_ns = end + state.tick_ns
    state.tick_seq += 1
    expire_leases(state, end)
    refresh_dirty_jobs(state)
    compact_cells(state)
    return result


def _advance(state: TwinState, ts_ns: int, results: list[TickResult]) -> None:
    """Close ticks until ``ts_ns`` is inside the open one (skipping empty ticks)."""
    results.append(close_tick(state))
    if ts_ns >= state.tick_end_ns:
        open_tick(state, ts_ns)


def fold_events(state: TwinState, batches: Iterable[Batch]) -> list[TickResult]:
    """Fold ``batches`` in log order, closing ticks as event time passes their ends."""
    results: list[TickResult] = []
    for batch in batches:
        if isinstance(batch, TelemetryBatch):
            _fold_telemetry_batch(state, batch, results)
            continue
        for ev in batch:
            if not accept_event(state, ev):
                continue
            at = tick_time(ev)
            if state.tick_start_ns >= 0 and at >= state.tick_end_ns:
                _advance(state, at, results)
            fold_event(state, ev)
    return results


def _fold_telemetry_batch(
    state: TwinState, batch: TelemetryBatch, results: list[TickResult]
) -> None:
    accept = accept_messages(state, batch)
    ts = telemetry_tick_times(batch)
    lo, m = 0, batch.n_messages
    while lo < m:
        if state.tick_start_ns < 0:
            first = np.flatnonzero(accept[lo:])
            if first.size == 0:
                return
            open_tick(state, int(ts[lo + int(first[0])]))
        beyond = np.flatnonzero(accept[lo:] & (ts[lo:] >= state.tick_end_ns))
        if beyond.size == 0:
            fold_telemetry(state, batch, accept, lo, m)
            return
        k = lo + int(beyond[0])
        fold_telemetry(state, batch, accept, lo, k)
        _advance(state, int(ts[k]), results)
        lo = k
