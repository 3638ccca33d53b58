"""Facility readings: power (``facility.power``), cooling (``facility.cooling``) and the
inter-campus network (``facility.network``). Low-rate events: per-element constraints are fine."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from schemas.envelope import EventBase, Id, PosInt, check_equal_lengths, check_unique, rule_error

__all__ = [
    "BatteryState",
    "CduReadings",
    "EnergyPrice",
    "FacilityPower",
    "HallPower",
    "LinkState",
    "PlantReading",
    "RackPower",
]

NonNegFloat = Annotated[float, Field(ge=0)]
CoolantTempC = Annotated[float, Field(ge=0, le=90)]
RackPduW = Annotated[float, Field(ge=0, le=500_000)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class RackPower(EventBase):
    """Rack PDU readings of one hall over one interval, as columns (one entry per rack)."""

    event_type: Literal["rack_power"] = "rack_power"
    schema_version: Literal[1] = 1
    hall_id: Id
    interval_ns: PosInt
    """Sampling period the readings stand for."""
    rack_id: Annotated[list[Id], Field(min_length=1)]
    """Column: the rack each reading belongs to (unique)."""
    pdu_power_w: Annotated[list[RackPduW], Field(min_length=1)]
    """Column: rack PDU power, W, 0 <= x <= 500,000."""

    @model_validator(mode="after")
    def _check_columns(self) -> RackPower:
        check_equal_lengths({"rack_id": self.rack_id, "pdu_power_w": self.pdu_power_w})
        check_unique("rack_id", self.rack_id)
        return self


class HallPower(EventBase):
    """Hall switchgear readings over one interval, as columns (one entry per hall)."""

    event_type: Literal["hall_power"] = "hall_power"
    schema_version: Literal[1] = 1
    interval_ns: PosInt
    """Sampling period the readings stand for."""
    hall_id: Annotated[list[Id], Field(min_length=1)]
    """Column: the hall each reading belongs to (unique)."""
    switchgear_power_w: Annotated[list[NonNegFloat], Field(min_length=1)]
    """Column: switchgear power, W, >= 0."""

    @model_validator(mode="after")
    def _check_columns(self) -> HallPower:
        check_equal_lengths(
            {"hall_id": self.hall_id, "switchgear_power_w": self.switchgear_power_w}
        )
        check_unique("hall_id", self.hall_id)
        return self


class FacilityPower(EventBase):
    """The facility meter: IT power and total power; total - IT is cooling and conversion."""

    event_type: Literal["facility_power"] = "facility_power"
    schema_version: Literal[1] = 1
    interval_ns: PosInt
    """Sampling period the reading stands for."""
    it_power_w: NonNegFloat
    """IT load, W, >= 0."""
    total_power_w: NonNegFloat
    """Total facility power, W, >= it_power_w."""

    @model_validator(mode="after")
    def _check_total(self) -> FacilityPower:
        if self.total_power_w < self.it_power_w:
            raise rule_error(
                f"total_power_w: must be >= it_power_w ({self.it_power_w!r}); "
                f"got {self.total_power_w!r}"
            )
        return self


class BatteryState(EventBase):
    """State of one battery installation."""

    event_type: Literal["battery_state"] = "battery_state"
    schema_version: Literal[1] = 1
    battery_id: Id
    state_of_charge: Fraction
    """Fraction of capacity stored, [0, 1]."""
    power_w: float
    """Power flow, W: discharge > 0, charge < 0."""
    capacity_wh: Annotated[float, Field(gt=0)]
    """Usable capacity, Wh, > 0."""


class EnergyPrice(EventBase):
    """The electricity price from ``ts_ns`` on."""

    event_type: Literal["energy_price"] = "energy_price"
    schema_version: Literal[1] = 1
    usd_per_mwh: Annotated[float, Field(ge=0, le=10_000)]
    """Price, $/MWh, 0 <= x <= 10,000."""


class CduReadings(EventBase):
    """Coolant distribution units of one hall over one interval, as columns (one per CDU)."""

    event_type: Literal["cdu_readings"] = "cdu_readings"
    schema_version: Literal[1] = 1
    hall_id: Id
    interval_ns: PosInt
    """Sampling period the readings stand for."""
    cdu_id: Annotated[list[Id], Field(min_length=1)]
    """Column: the CDU (unique)."""
    rack_id: Annotated[list[Id], Field(min_length=1)]
    """Column: the rack the CDU serves."""
    supply_temp_c: Annotated[list[CoolantTempC], Field(min_length=1)]
    """Column: coolant supply temperature, C, 0 <= x <= 90."""
    return_temp_c: Annotated[list[CoolantTempC], Field(min_length=1)]
    """Column: coolant return temperature, C, 0 <= x <= 90."""
    flow_lpm: Annotated[list[NonNegFloat], Field(min_length=1)]
    """Column: coolant flow, L/min, >= 0."""
    pump_power_w: Annotated[list[NonNegFloat], Field(min_length=1)]
    """Column: pump power, W, >= 0."""

    @model_validator(mode="after")
    def _check_columns(self) -> CduReadings:
        check_equal_lengths(
            {
                "cdu_id": self.cdu_id,
                "rack_id": self.rack_id,
                "supply_temp_c": self.supply_temp_c,
                "return_temp_c": self.return_temp_c,
                "flow_lpm": self.flow_lpm,
                "pump_power_w": self.pump_power_w,
            }
        )
        check_unique("cdu_id", self.cdu_id)
        return self


class PlantReading(EventBase):
    """The chiller plant and the outdoor air."""

    event_type: Literal["plant_reading"] = "plant_reading"
    schema_version: Literal[1] = 1
    interval_ns: PosInt
    """Sampling period the reading stands for."""
    chiller_power_w: NonNegFloat
    """Chiller plant power, W, >= 0."""
    wet_bulb_c: Annotated[float, Field(ge=-40, le=50)]
    """Outdoor wet-bulb temperature, C, -40 <= x <= 50."""


class LinkState(EventBase):
    """State of one inter-campus link."""

    event_type: Literal["link_state"] = "link_state"
    schema_version: Literal[1] = 1
    link_id: Id
    campus_a: Id
    campus_b: Id
    latency_us: Annotated[float, Field(ge=0, le=1_000_000)]
    """One-way latency, microseconds, 0 <= x <= 1e6."""
    bandwidth_gbps: Annotated[float, Field(gt=0)]
    """Usable bandwidth, Gbit/s, > 0."""
    loss_fraction: Fraction
    """Packet loss, fraction, [0, 1]."""
