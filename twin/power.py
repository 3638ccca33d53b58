"""Reducers for power, price, cooling, batteries and network links.

Energy readings are integrated as power x ``interval_ns`` into the open tick:

- ``rack_power``: each rack's PDU energy; the kernels give each GPU an even share of the rack's
  non-GPU power (PDU minus the GPUs' board power, floored at 0).
- ``facility_power``: the facility meter; the kernels take overhead = total - IT from it.
- ``hall_power`` (switchgear) and ``plant_reading`` (chillers) are kept for reporting.

``energy_price`` sets the price from its ``ts_ns`` on; a tick's energy is priced at the price in
force when the tick closes. CDU, battery and link readings keep the latest value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twin.batches import (
    BatteryState,
    CduReadings,
    EnergyPrice,
    FacilityPower,
    HallPower,
    LinkState,
    PlantReading,
    RackPower,
)
from twin.state import TwinState

__all__ = [
    "on_battery_state",
    "on_cdu_readings",
    "on_energy_price",
    "on_facility_power",
    "on_hall_power",
    "on_link_state",
    "on_plant_reading",
    "on_rack_power",
]

I64 = npt.NDArray[np.int64]


def _lookup(state: TwinState, index: dict[str, int], ids: tuple[str, ...]) -> I64:
    """Dense indices of ``ids`` (-1 where unknown, counted)."""
    out = np.fromiter((index.get(i, -1) for i in ids), np.int64, len(ids))
    missing = int(np.count_nonzero(out < 0))
    if missing:
        state.count("unknown", missing)
    return out


def on_rack_power(state: TwinState, ev: RackPower) -> None:
    rack = _lookup(state, state.rack_index, ev.rack_id)
    ok = rack >= 0
    joules = np.asarray(ev.pdu_power_w, np.float64) * (ev.interval_ns * 1e-9)
    np.add.at(state.rack_pdu_j, rack[ok], joules[ok])
    state.rack_pdu_seen[rack[ok]] = True


def on_hall_power(state: TwinState, ev: HallPower) -> None:
    hall = _lookup(state, state.hall_index, ev.hall_id)
    ok = hall >= 0
    watts = np.asarray(ev.switchgear_power_w, np.float64)
    state.hall_switchgear_w[hall[ok]] = watts[ok]
    np.add.at(state.hall_switchgear_j, hall[ok], watts[ok] * (ev.interval_ns * 1e-9))


def on_facility_power(state: TwinState, ev: FacilityPower) -> None:
    seconds = ev.interval_ns * 1e-9
    state.meter_total_j += ev.total_power_w * seconds
    state.meter_it_j += ev.it_power_w * seconds


def on_energy_price(state: TwinState, ev: EnergyPrice) -> None:
    state.usd_per_mwh = float(ev.usd_per_mwh)


def on_cdu_readings(state: TwinState, ev: CduReadings) -> None:
    rack = _lookup(state, state.rack_index, ev.rack_id)
    ok = rack >= 0
    r = rack[ok]
    state.rack_supply_c[r] = np.asarray(ev.supply_temp_c, np.float64)[ok]
    state.rack_return_c[r] = np.asarray(ev.return_temp_c, np.float64)[ok]
    state.rack_flow_lpm[r] = np.asarray(ev.flow_lpm, np.float64)[ok]
    state.rack_pump_w[r] = np.asarray(ev.pump_power_w, np.float64)[ok]


def on_plant_reading(state: TwinState, ev: PlantReading) -> None:
    state.chiller_j += ev.chiller_power_w * (ev.interval_ns * 1e-9)
    state.wet_bulb_c = float(ev.wet_bulb_c)


def on_battery_state(state: TwinState, ev: BatteryState) -> None:
    b = state.register("bat", state.bat_index, state.bat_ids, ev.battery_id)
    state.bat_soc[b] = ev.state_of_charge
    state.bat_power_w[b] = ev.power_w
    state.bat_capacity_wh[b] = ev.capacity_wh


def on_link_state(state: TwinState, ev: LinkState) -> None:
    link = state.register("link", state.link_index, state.link_ids, ev.link_id)
    state.link_campus_a[link] = state.register(
        "campus", state.campus_index, state.campus_ids, ev.campus_a
    )
    state.link_campus_b[link] = state.register(
        "campus", state.campus_index, state.campus_ids, ev.campus_b
    )
    state.link_latency_us[link] = ev.latency_us
    state.link_bandwidth_gbps[link] = ev.bandwidth_gbps
    state.link_loss[link] = ev.loss_fraction
