"""``apply(state, batch)``: fold a batch of events into the open tick. Pure and deterministic.

- **Duplicates** (event-sourcing rule 2): an event or telemetry message whose ``seq`` is not
  above its source's high-water mark changes nothing except the ``duplicates`` counter
  (:mod:`twin.telemetry` documents the vectorized check).
- **Tick time**: an event belongs to the tick containing its ``ts_ns``, except readings that
  stand for an interval ending at ``ts_ns`` (telemetry, meters), which belong to the tick their
  interval *starts* in (:func:`tick_time`): the sample at 10.000 s covers [9, 10) s.
- **Late events**: an event whose tick time is before the open tick's start is folded into the
  open tick like any other and counted in ``late``; closed ticks are never reopened. Events at or
  after the open tick's end are folded too: closing ticks at the right places is the caller's
  job (the streams shell, or :func:`twin.ticks.fold_events`).
- The first accepted event opens the first tick, aligned to a multiple of ``tick_ns``.

``apply`` mutates ``state`` in place and returns it. Folding the same events in the same order
gives bit-identical state however they are split into batches: per-event work runs in log order,
and per-sample sums are integers (exact in any grouping).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from twin import jobs, leases, power, topology
from twin.batches import (
    Batch,
    BatteryState,
    CduReadings,
    EnergyPrice,
    Event,
    FacilityPower,
    GpuStatusChange,
    HallPower,
    JobCheckpoint,
    JobFailed,
    JobFinished,
    JobStarted,
    JobStep,
    JobSubmitted,
    LeaseEnded,
    LeaseNotice,
    LeaseSigned,
    LinkState,
    PlantReading,
    RackInstalled,
    RackPower,
    TelemetryBatch,
)
from twin.cells import refresh_dirty_jobs
from twin.state import TwinState
from twin.telemetry import accept_messages, fold_telemetry, source_codes

__all__ = ["accept_event", "apply", "fold_event", "open_tick", "telemetry_tick_times", "tick_time"]


def _rack_installed(state: TwinState, ev: RackInstalled) -> None:
    gpus = topology.on_rack_installed(state, ev)
    if gpus.size:
        leases.fill_pending_leases(state, gpus, ev.ts_ns)


_HANDLERS: Final[dict[type, Callable[[TwinState, Any], None]]] = {
    RackInstalled: _rack_installed,
    GpuStatusChange: topology.on_gpu_status,
    JobSubmitted: jobs.on_job_submitted,
    JobStarted: jobs.on_job_started,
    JobStep: jobs.on_job_step,
    JobCheckpoint: jobs.on_job_checkpoint,
    JobFailed: jobs.on_job_failed,
    JobFinished: jobs.on_job_finished,
    LeaseSigned: leases.on_lease_signed,
    LeaseNotice: leases.on_lease_notice,
    LeaseEnded: leases.on_lease_ended,
    RackPower: power.on_rack_power,
    HallPower: power.on_hall_power,
    FacilityPower: power.on_facility_power,
    BatteryState: power.on_battery_state,
    EnergyPrice: power.on_energy_price,
    CduReadings: power.on_cdu_readings,
    PlantReading: power.on_plant_reading,
    LinkState: power.on_link_state,
}


def tick_time(ev: Event) -> int:
    """The event time that decides an event's tick: ``ts_ns``, except for readings that stand
    for an interval ending at ``ts_ns`` (power and cooling meters), which belong to the tick
    their interval starts in. Telemetry messages follow the same rule
    (:func:`telemetry_tick_times`)."""
    interval = getattr(ev, "interval_ns", 0)
    return ev.ts_ns - int(interval) if interval > 0 else ev.ts_ns


def telemetry_tick_times(batch: TelemetryBatch) -> npt.NDArray[np.int64]:
    """Per message, the start of the interval it stands for (``ts_ns - interval_ns``): the
    sample taken at the end of a tick's last second belongs to that tick."""
    out: npt.NDArray[np.int64] = batch.ts_ns - batch.interval_ns
    return out


def open_tick(state: TwinState, ts_ns: int) -> None:
    """Open the tick containing ``ts_ns`` (aligned to a multiple of ``tick_ns``)."""
    start = (ts_ns // state.tick_ns) * state.tick_ns
    state.tick_start_ns = start
    state.tick_end_ns = start + state.tick_ns


def accept_event(state: TwinState, ev: Event) -> bool:
    """False (and counted) for a duplicate; otherwise raises its source's high-water mark."""
    code = int(source_codes(state, (ev.source_id,))[0])
    if ev.seq <= state.src_hwm[code]:
        state.count("duplicates")
        return False
    state.src_hwm[code] = ev.seq
    return True


def fold_event(state: TwinState, ev: Event) -> None:
    """Fold one accepted event into the open tick (opening the first tick if needed)."""
    at = tick_time(ev)
    if state.tick_start_ns < 0:
        open_tick(state, at)
    state.count("events")
    if at < state.tick_start_ns:
        state.count("late")
    handler = _HANDLERS.get(type(ev))
    if handler is None:
        raise TypeError(f"not an event the twin folds: {type(ev).__name__}")
    handler(state, ev)
    if state.dirty_jobs:
        refresh_dirty_jobs(state)


def apply(state: TwinState, batch: Batch) -> TwinState:
    """Fold ``batch`` (telemetry, or low-volume events in log order) into the open tick."""
    if isinstance(batch, TelemetryBatch):
        accept = accept_messages(state, batch)
        if not accept.any():
            return state
        if state.tick_start_ns < 0:
            open_tick(state, int(telemetry_tick_times(batch)[int(np.argmax(accept))]))
        fold_telemetry(state, batch, accept, 0, batch.n_messages)
        return state
    for ev in batch:
        if accept_event(state, ev):
            fold_event(state, ev)
    return state
