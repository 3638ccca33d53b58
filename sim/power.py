"""Board power, rack power and GPU temperatures, for all GPUs at once.

Board power over an interval is idle power plus the span to compute power, weighted by what the
GPU did: computing (times clock^k when throttled), spinning in a collective, waiting at a barrier,
holding a context while the job checkpoints or restarts. A failed GPU draws nothing. Each rack
adds its nodes' non-GPU power (a base plus a part that follows GPU activity) and its own base
(switches, NVSwitch trays). Temperatures follow a first-order model towards
``supply + R_th x power``; above the throttle temperature the clock steps down, below it minus the
hysteresis it steps back up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.config import Scenario
from sim.topology import Topology
from twin.gpus import MODEL_NAMES

__all__ = ["PowerModel", "Thermal", "full_load_rack_power_w"]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
B = npt.NDArray[np.bool_]


def _per_model(scenario: Scenario, attr: str) -> F64:
    """A generation parameter as an array indexed by model code (0 for absent models)."""
    out = np.zeros(len(MODEL_NAMES))
    for name, gen in scenario.generation.items():
        out[MODEL_NAMES.index(name)] = float(getattr(gen, attr))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class PowerModel:
    """Per-GPU and per-rack power parameters, resolved once."""

    idle_w: F64  # per GPU
    span_w: F64  # compute power - idle, per GPU
    rack_nodes: F64  # per rack
    node_base_w: F64  # per rack
    node_active_w_per_gpu: F64  # per rack: node_active_w / gpus_per_node
    rack_base_w: F64  # per rack
    w_comm: float
    w_strag: float
    w_idle: float
    clock_exp: float

    @classmethod
    def build(cls, scenario: Scenario, topo: Topology) -> PowerModel:
        idle = _per_model(scenario, "idle_w")
        compute = _per_model(scenario, "compute_power_w")
        per_node = _per_model(scenario, "gpus_per_node")
        per_node[per_node == 0] = 1.0
        rm = topo.rack_model
        act = scenario.activity
        return cls(
            idle_w=idle[topo.gpu_model],
            span_w=(compute - idle)[topo.gpu_model],
            rack_nodes=topo.rack_nodes.astype(np.float64),
            node_base_w=_per_model(scenario, "node_base_w")[rm],
            node_active_w_per_gpu=(_per_model(scenario, "node_active_w") / per_node)[rm],
            rack_base_w=_per_model(scenario, "rack_base_w")[rm],
            w_comm=act.comm,
            w_strag=act.straggler_wait,
            w_idle=act.allocated_idle,
            clock_exp=act.clock_power_exponent,
        )

    def activity(
        self, compute: F64, strag: F64, comm: F64, aidle: F64, *, clock: F64, dt: float
    ) -> F64:
        """Activity in [0, 1] per GPU from the seconds spent in each phase over ``dt``."""
        a = compute * clock**self.clock_exp
        a += self.w_comm * comm
        a += self.w_strag * strag
        a += self.w_idle * aidle
        a *= 1.0 / dt
        return a

    def board_power_w(self, activity: F64, up: B) -> F64:
        p = self.span_w * activity
        p += self.idle_w
        p[~up] = 0.0
        return p

    def rack_overhead_w(self, activity: F64, topo: Topology) -> F64:
        """Non-GPU power of each rack."""
        act_sum = np.add.reduceat(activity, topo.rack_offsets[:-1])
        return (
            self.rack_nodes * self.node_base_w
            + self.node_active_w_per_gpu * act_sum
            + (self.rack_base_w)
        )


def full_load_rack_power_w(model: PowerModel, topo: Topology) -> F64:
    """Each rack's power with every GPU computing at full clock (rated load)."""
    ones = np.ones(topo.n_gpus)
    board = model.board_power_w(ones, np.ones(topo.n_gpus, dtype=bool))
    return np.add.reduceat(board, topo.rack_offsets[:-1]) + model.rack_overhead_w(ones, topo)


@dataclass(slots=True, eq=False)
class Thermal:
    """GPU temperatures and clock fractions (the throttle state)."""

    resistance: F64  # C per W, per GPU
    supply_c: F64  # coolant supply temperature at each GPU's rack
    throttle_c: F64
    temp_c: F64
    clock: F64  # fraction of max SM clock
    tau_s: float
    hysteresis_c: float
    slew_per_s: float
    min_clock: float

    @classmethod
    def build(
        cls, scenario: Scenario, topo: Topology, rng: np.random.Generator, power_w: F64
    ) -> Thermal:
        th = scenario.thermal
        n = topo.n_gpus
        r = _per_model(scenario, "thermal_resistance_c_per_w")[topo.gpu_model]
        r = r * np.exp(rng.normal(0.0, th.resistance_spread, n))
        bad = rng.random(n) < th.bad_plate_fraction
        r[bad] *= th.bad_plate_factor
        rack_supply = scenario.cooling.supply_temp_c + rng.normal(
            0.0, scenario.cooling.supply_spread_c, topo.n_racks
        )
        supply = rack_supply[topo.gpu_rack]
        return cls(
            resistance=r,
            supply_c=supply,
            throttle_c=_per_model(scenario, "throttle_temp_c")[topo.gpu_model],
            temp_c=supply + r * power_w,  # start in equilibrium with the initial load
            clock=np.ones(n),
            tau_s=th.time_constant_s,
            hysteresis_c=th.hysteresis_c,
            slew_per_s=th.clock_slew_per_s,
            min_clock=th.min_clock_fraction,
        )

    def update(self, power_w: F64, dt: float, model: PowerModel) -> None:
        """Advance temperatures by ``dt`` under ``power_w``, then step the clocks.

        Like a GPU's thermal governor: a GPU above its throttle temperature steers its clock
        towards the one whose full-compute power would hold it at the limit; below the limit
        minus the hysteresis it recovers towards full clock. Clocks move at most
        ``slew_per_s`` per second."""
        target = self.resistance * power_w
        target += self.supply_c
        target -= self.temp_c
        target *= 1.0 - np.exp(-dt / self.tau_s)
        self.temp_c += target
        step = self.slew_per_s * dt
        hot = np.flatnonzero(self.temp_c > self.throttle_c)
        if hot.shape[0]:
            allowed_w = (self.throttle_c[hot] - self.supply_c[hot]) / self.resistance[hot]
            frac = np.maximum(allowed_w - model.idle_w[hot], 0.0) / model.span_w[hot]
            want = np.clip(frac ** (1.0 / max(model.clock_exp, 1e-6)), self.min_clock, 1.0)
            now = self.clock[hot]
            self.clock[hot] = np.maximum(np.minimum(now, want), now - step)
        cool = (self.clock < 1.0) & (self.temp_c < self.throttle_c - self.hysteresis_c)
        if cool.any():
            self.clock[cool] = np.minimum(self.clock[cool] + step, 1.0)
