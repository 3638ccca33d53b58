"""Cooling, conversion losses, the facility meter and the battery.

One CDU per rack removes the rack's heat: its flow follows load between a minimum and the design
flow (``lpm_per_kw`` x the rack's rated kW); the return temperature is supply + heat / (flow x
c_p). Hall switchgear carries the racks, the CDU pumps and the distribution losses. The chiller
plant rejects the heat at a COP that falls as the outdoor wet bulb rises. Facility total = halls +
chiller + miscellaneous; IT = the racks' PDUs. PUE = total / IT. The battery covers the swings
of the load around its moving average, so the grid sees a smoother draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.config import Scenario
from sim.topology import Topology

__all__ = ["Battery", "FacilityPower", "Plant", "facility_power"]

F64 = npt.NDArray[np.float64]

_WATER_J_PER_L_K = 4186.0  # c_p of water x 1 kg/L


@dataclass(frozen=True, slots=True, eq=False)
class FacilityPower:
    """One interval's power flows (W)."""

    rack_w: F64  # PDU power per rack (IT)
    cdu_flow_lpm: F64  # per rack
    cdu_pump_w: F64  # per rack
    cdu_return_c: F64  # per rack
    hall_w: F64  # switchgear per hall
    chiller_w: float
    wet_bulb_c: float
    it_w: float
    total_w: float


@dataclass(frozen=True, slots=True, eq=False)
class Plant:
    """Cooling and distribution parameters, resolved once."""

    supply_c: float
    design_flow_lpm: F64  # per rack
    rated_rack_w: F64
    min_flow: float
    pump_w_per_lpm: float
    cop_ref: float
    cop_ref_wb: float
    cop_slope: float
    wb_mean: float
    wb_amp: float
    dist_loss: float
    misc_w: float

    @classmethod
    def build(cls, scenario: Scenario, rated_rack_w: F64) -> Plant:
        c = scenario.cooling
        return cls(
            supply_c=c.supply_temp_c,
            design_flow_lpm=c.lpm_per_kw * rated_rack_w / 1000.0,
            rated_rack_w=rated_rack_w,
            min_flow=c.min_flow_fraction,
            pump_w_per_lpm=c.pump_w_per_lpm,
            cop_ref=c.chiller_cop_ref,
            cop_ref_wb=c.cop_ref_wet_bulb_c,
            cop_slope=c.cop_change_per_c,
            wb_mean=c.wet_bulb_mean_c,
            wb_amp=c.wet_bulb_amplitude_c,
            dist_loss=c.distribution_loss_fraction,
            misc_w=c.misc_overhead_w,
        )

    def wet_bulb_c(self, hour_of_day: float) -> float:
        """Diurnal wet bulb: coolest near 05:00, warmest near 15:00 (local solar time)."""
        return self.wb_mean + self.wb_amp * math.sin(2.0 * math.pi * (hour_of_day - 9.0) / 24.0)

    def cop(self, wet_bulb_c: float) -> float:
        return max(1.0, self.cop_ref * (1.0 - self.cop_slope * (wet_bulb_c - self.cop_ref_wb)))


def facility_power(plant: Plant, topo: Topology, rack_w: F64, hour_of_day: float) -> FacilityPower:
    """All facility power flows given each rack's PDU power."""
    load = np.minimum(rack_w / plant.rated_rack_w, 1.5)
    flow = plant.design_flow_lpm * (plant.min_flow + (1.0 - plant.min_flow) * load)
    pump = plant.pump_w_per_lpm * flow
    ret = plant.supply_c + rack_w / (flow / 60.0 * _WATER_J_PER_L_K)
    hall: F64 = np.bincount(
        topo.rack_hall, weights=rack_w + pump, minlength=len(topo.hall_ids)
    ).astype(np.float64)
    hall *= 1.0 + plant.dist_loss
    it = float(rack_w.sum())
    heat = it + float(pump.sum())
    wb = plant.wet_bulb_c(hour_of_day)
    chiller = heat / plant.cop(wb)
    total = float(hall.sum()) + chiller + plant.misc_w
    return FacilityPower(
        rack_w=rack_w,
        cdu_flow_lpm=flow,
        cdu_pump_w=pump,
        cdu_return_c=ret,
        hall_w=hall,
        chiller_w=chiller,
        wet_bulb_c=wb,
        it_w=it,
        total_w=total,
    )


@dataclass(slots=True, eq=False)
class Battery:
    """Battery packs smoothing the grid draw: discharge above the load's moving average."""

    battery_id: str
    capacity_wh: float
    max_power_w: float
    soc: float
    smoothing_s: float
    average_w: float | None = None
    power_w: float = 0.0

    @classmethod
    def build(cls, scenario: Scenario) -> Battery:
        b = scenario.battery
        return cls(b.id, b.capacity_wh, b.max_power_w, b.initial_soc, b.smoothing_s)

    def update(self, load_w: float, dt: float) -> None:
        if self.average_w is None:
            self.average_w = load_w
        self.average_w += (load_w - self.average_w) * (1.0 - math.exp(-dt / self.smoothing_s))
        want = max(-self.max_power_w, min(self.max_power_w, load_w - self.average_w))
        energy_wh = want * dt / 3600.0
        if energy_wh > 0:  # discharging
            energy_wh = min(energy_wh, self.soc * self.capacity_wh)
        else:
            energy_wh = max(energy_wh, -(1.0 - self.soc) * self.capacity_wh)
        self.power_w = energy_wh * 3600.0 / dt
        self.soc = min(1.0, max(0.0, self.soc - energy_wh / self.capacity_wh))
