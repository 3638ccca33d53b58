"""Validated low-volume events -> the core's input dataclasses (:mod:`twin.batches`).

One object per event (these topics carry a few events per second, not thousands): index lists
become ``np.int32`` arrays, reading columns ``np.float64`` arrays, id columns tuples. Telemetry
goes through :func:`schemas.columnar.telemetry_batch` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from schemas import facility, jobs, leases, topology
from schemas.envelope import EventBase
from schemas.telemetry import GpuTelemetry
from twin import batches

__all__ = ["to_core", "to_core_events"]


def _i32(values: list[int]) -> npt.NDArray[np.int32]:
    return np.array(values, dtype=np.int32)


def _f64(values: list[float]) -> npt.NDArray[np.float64]:
    return np.array(values, dtype=np.float64)


def _env(e: EventBase) -> dict[str, Any]:
    return {"ts_ns": e.ts_ns, "source_id": e.source_id, "seq": e.seq}


def _rack_installed(e: topology.RackInstalled) -> batches.RackInstalled:
    return batches.RackInstalled(
        **_env(e),
        rack_id=e.rack_id,
        campus_id=e.campus_id,
        hall_id=e.hall_id,
        gpu_model=e.gpu_model,
        gpus_per_node=e.gpus_per_node,
        gpu_index=_i32(e.gpu_index),
        gpu_uuid=tuple(e.gpu_uuid),
    )


def _gpu_status(e: topology.GpuStatus) -> batches.GpuStatusChange:
    return batches.GpuStatusChange(
        **_env(e), action=e.action, gpu_indices=_i32(e.gpu_indices), xid=e.xid, reason=e.reason
    )


def _job_submitted(e: jobs.JobSubmitted) -> batches.JobSubmitted:
    return batches.JobSubmitted(
        **_env(e), job_id=e.job_id, tenant_id=e.tenant_id, gpus_requested=e.gpus_requested
    )


def _job_started(e: jobs.JobStarted) -> batches.JobStarted:
    m, p = e.model, e.parallelism
    return batches.JobStarted(
        **_env(e),
        job_id=e.job_id,
        tenant_id=e.tenant_id,
        gpu_indices=_i32(e.gpu_indices),
        work_share=None if e.work_share is None else _f64(e.work_share),
        model=batches.ModelSpec(
            params=float(m.params),
            layers=m.layers,
            heads=m.heads,
            head_dim=m.head_dim,
            seq_len=m.seq_len,
            dtype=m.dtype,
            attention=m.attention,
        ),
        parallelism=batches.Parallelism(data=p.data, tensor=p.tensor, pipeline=p.pipeline),
    )


def _job_step(e: jobs.JobStep) -> batches.JobStep:
    return batches.JobStep(
        **_env(e),
        job_id=e.job_id,
        step=e.step,
        tokens=e.tokens,
        duration_s=e.duration_s,
        exposed_comm_s=e.exposed_comm_s,
    )


def _job_checkpoint(e: jobs.JobCheckpoint) -> batches.JobCheckpoint:
    return batches.JobCheckpoint(**_env(e), job_id=e.job_id, step=e.step, duration_s=e.duration_s)


def _job_failed(e: jobs.JobFailed) -> batches.JobFailed:
    return batches.JobFailed(
        **_env(e),
        job_id=e.job_id,
        reason=e.reason,
        failed_gpu_indices=_i32(e.failed_gpu_indices),
    )


def _job_finished(e: jobs.JobFinished) -> batches.JobFinished:
    return batches.JobFinished(**_env(e), job_id=e.job_id, steps=e.steps)


def _lease_signed(e: leases.LeaseSigned) -> batches.LeaseSigned:
    return batches.LeaseSigned(
        **_env(e),
        lease_id=e.lease_id,
        tenant_id=e.tenant_id,
        gpu_indices=None if e.gpu_indices is None else _i32(e.gpu_indices),
        gpu_counts=None if e.gpu_counts is None else tuple(e.gpu_counts.items()),
        usd_per_month=e.usd_per_month,
        start_ns=e.start_ns,
        end_ns=e.end_ns,
        notice_days=e.notice_days,
    )


def _lease_notice(e: leases.LeaseNotice) -> batches.LeaseNotice:
    return batches.LeaseNotice(**_env(e), lease_id=e.lease_id, effective_end_ns=e.effective_end_ns)


def _lease_ended(e: leases.LeaseEnded) -> batches.LeaseEnded:
    return batches.LeaseEnded(**_env(e), lease_id=e.lease_id)


def _rack_power(e: facility.RackPower) -> batches.RackPower:
    return batches.RackPower(
        **_env(e),
        hall_id=e.hall_id,
        interval_ns=e.interval_ns,
        rack_id=tuple(e.rack_id),
        pdu_power_w=_f64(e.pdu_power_w),
    )


def _hall_power(e: facility.HallPower) -> batches.HallPower:
    return batches.HallPower(
        **_env(e),
        interval_ns=e.interval_ns,
        hall_id=tuple(e.hall_id),
        switchgear_power_w=_f64(e.switchgear_power_w),
    )


def _facility_power(e: facility.FacilityPower) -> batches.FacilityPower:
    return batches.FacilityPower(
        **_env(e),
        interval_ns=e.interval_ns,
        it_power_w=e.it_power_w,
        total_power_w=e.total_power_w,
    )


def _battery_state(e: facility.BatteryState) -> batches.BatteryState:
    return batches.BatteryState(
        **_env(e),
        battery_id=e.battery_id,
        state_of_charge=e.state_of_charge,
        power_w=e.power_w,
        capacity_wh=e.capacity_wh,
    )


def _energy_price(e: facility.EnergyPrice) -> batches.EnergyPrice:
    return batches.EnergyPrice(**_env(e), usd_per_mwh=e.usd_per_mwh)


def _cdu_readings(e: facility.CduReadings) -> batches.CduReadings:
    return batches.CduReadings(
        **_env(e),
        hall_id=e.hall_id,
        interval_ns=e.interval_ns,
        cdu_id=tuple(e.cdu_id),
        rack_id=tuple(e.rack_id),
        supply_temp_c=_f64(e.supply_temp_c),
        return_temp_c=_f64(e.return_temp_c),
        flow_lpm=_f64(e.flow_lpm),
        pump_power_w=_f64(e.pump_power_w),
    )


def _plant_reading(e: facility.PlantReading) -> batches.PlantReading:
    return batches.PlantReading(
        **_env(e),
        interval_ns=e.interval_ns,
        chiller_power_w=e.chiller_power_w,
        wet_bulb_c=e.wet_bulb_c,
    )


def _link_state(e: facility.LinkState) -> batches.LinkState:
    return batches.LinkState(
        **_env(e),
        link_id=e.link_id,
        campus_a=e.campus_a,
        campus_b=e.campus_b,
        latency_us=e.latency_us,
        bandwidth_gbps=e.bandwidth_gbps,
        loss_fraction=e.loss_fraction,
    )


_CONVERTERS: Final[dict[type[EventBase], Callable[[Any], batches.Event]]] = {
    topology.RackInstalled: _rack_installed,
    topology.GpuStatus: _gpu_status,
    jobs.JobSubmitted: _job_submitted,
    jobs.JobStarted: _job_started,
    jobs.JobStep: _job_step,
    jobs.JobCheckpoint: _job_checkpoint,
    jobs.JobFailed: _job_failed,
    jobs.JobFinished: _job_finished,
    leases.LeaseSigned: _lease_signed,
    leases.LeaseNotice: _lease_notice,
    leases.LeaseEnded: _lease_ended,
    facility.RackPower: _rack_power,
    facility.HallPower: _hall_power,
    facility.FacilityPower: _facility_power,
    facility.BatteryState: _battery_state,
    facility.EnergyPrice: _energy_price,
    facility.CduReadings: _cdu_readings,
    facility.PlantReading: _plant_reading,
    facility.LinkState: _link_state,
}


def to_core(event: EventBase) -> batches.Event:
    """The :mod:`twin.batches` object for one validated low-volume event."""
    if isinstance(event, GpuTelemetry):
        raise TypeError("gpu_telemetry goes through schemas.columnar.telemetry_batch")
    return _CONVERTERS[type(event)](event)


def to_core_events(events: Iterable[EventBase]) -> list[batches.Event]:
    """:func:`to_core` over ``events``, in order (the reducers take them in log order)."""
    return [to_core(e) for e in events]
