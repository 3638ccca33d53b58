"""The scenario as typed, frozen data: what a TOML scenario file may say, with each rule.

Every number that FACTS.md tags press, paper or uncertain is a field here whose value comes from
``sim/scenarios/_defaults.toml`` (the base layer every scenario is merged onto) or the scenario
file itself; nothing of the kind is a constant in the simulator's code. ``Rule`` metadata on a
field states its valid range; :mod:`sim.scenario` enforces it and names the key on failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ActivityConfig",
    "BatteryConfig",
    "CampusConfig",
    "CoolingConfig",
    "EconomicsConfig",
    "FailureConfig",
    "GenerationParams",
    "HallConfig",
    "JobConfig",
    "LeaseConfig",
    "LinkConfig",
    "ModelSpec",
    "NetworkConfig",
    "PriceChange",
    "Rule",
    "Scenario",
    "ScenarioMeta",
    "TelemetryConfig",
    "ThermalConfig",
    "rule",
]


@dataclass(frozen=True, slots=True)
class Rule:
    """A field's valid range and allowed values (checked by the loader)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()
    duration: bool = False  # a duration string ("90s", "10m"); "" allowed when optional
    instant: bool = False  # an ISO 8601 instant


def rule(
    lo: float | None = None,
    hi: float | None = None,
    *,
    gt: float | None = None,
    choices: tuple[str, ...] = (),
    duration: bool = False,
    instant: bool = False,
    default: Any = None,
) -> Any:
    """A dataclass field carrying a :class:`Rule` (``gt`` = exclusive lower bound).

    Fields without a ``default`` stay required; keep them before any field with a default."""
    r = Rule(
        lo=gt if gt is not None else lo,
        hi=hi,
        lo_open=gt is not None,
        choices=choices,
        duration=duration,
        instant=instant,
    )
    if default is None:
        return field(metadata={"rule": r})
    return field(default=default, metadata={"rule": r})


@dataclass(frozen=True, slots=True)
class ScenarioMeta:
    name: str
    description: str
    epoch: str = rule(instant=True)  # event time of the first instant simulated
    seed: int = rule(0)


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    gpu_interval_s: float = rule(gt=0, hi=60)  # one gpu_telemetry message per rack per interval
    power_interval_s: float = rule(gt=0)  # rack/hall/facility power; a multiple of the above
    cooling_interval_s: float = rule(gt=0)  # cdu_readings
    plant_interval_s: float = rule(gt=0)  # plant_reading and battery_state
    truth_tick_s: float = rule(gt=0)  # ground-truth rows per scope
    sm_active_noise: float = rule(0, 0.2)  # std dev of the noise added to the true sm_active
    activity_noise: float = rule(0, 0.2)  # std dev on tensor_active and dram_active
    power_noise_w: float = rule(0, 50)  # std dev of board power measurement noise
    #: gpu_telemetry wire format: "json" (v1, one reading a message) or "binary" (the columnar
    #: layout of docs/EVENTS.md, readings_per_message consecutive readings a message)
    format: str = rule(choices=("json", "binary"), default="json")
    readings_per_message: int = rule(1, 3600, default=1)  # > 1 needs format = "binary"


@dataclass(frozen=True, slots=True)
class PriceChange:
    at: str = rule(duration=True)  # offset from the scenario epoch
    usd_per_mwh: float = rule(0, 10_000)


@dataclass(frozen=True, slots=True)
class EconomicsConfig:
    energy_usd_per_mwh: float = rule(0, 10_000)  # FACTS 1: industrial rate about $62/MWh (press)
    hours_per_month: float = rule(gt=0)  # FACTS 5: 730


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    nic_gbps: float = rule(gt=0)  # one 400 GbE NIC per GPU (press)
    effective_throughput: float = rule(gt=0, hi=1)  # Spectrum-X claim 95% (press)
    intra_alpha_us: float = rule(0, 1000)  # per-hop latency inside a campus
    fiber_us_per_km: float = rule(0, 100)  # about 4.9 us per km one way
    equipment_latency_us: float = rule(0, 100_000)  # optics, DWDM, routers on an inter-campus path
    loss_penalty: float = rule(0, 1000)  # goodput = 1 - penalty * loss (RoCE go-back-N)
    min_goodput: float = rule(gt=0, hi=1)  # floor of that factor
    degradations_per_link_hour: float = rule(0, 3600)  # ageing links: loss episodes
    degradation_loss_fraction: float = rule(0, 1)
    degradation_minutes_mean: float = rule(gt=0)


@dataclass(frozen=True, slots=True)
class LinkConfig:
    id: str
    campus_a: str
    campus_b: str
    route_km: float = rule(gt=0)  # fiber route length (longer than the straight line)
    bandwidth_gbps: float = rule(gt=0)
    loss_fraction: float = rule(0, 1)


@dataclass(frozen=True, slots=True)
class CoolingConfig:
    supply_temp_c: float = rule(0, 60)  # cold-plate supply about 25 C (uncertain)
    supply_spread_c: float = rule(0, 10)  # rack-to-rack supply variation (std dev)
    lpm_per_kw: float = rule(gt=0)  # about 1.5 L/min per kW (uncertain)
    min_flow_fraction: float = rule(0, 1)  # CDU flow at zero load, fraction of design flow
    pump_w_per_lpm: float = rule(0)  # CDU pump power per L/min of flow
    chiller_cop_ref: float = rule(gt=0)  # heat removed per W of chiller plant power at ref wet bulb
    cop_ref_wet_bulb_c: float = rule(-40, 50)
    cop_change_per_c: float = rule(0, 0.2)  # relative COP loss per C of wet bulb above ref
    wet_bulb_mean_c: float = rule(-40, 50)  # Memphis in October
    wet_bulb_amplitude_c: float = rule(0, 30)  # diurnal swing (half peak-to-peak)
    distribution_loss_fraction: float = rule(0, 0.5)  # transformers, UPS, busway: of IT power
    misc_overhead_w: float = rule(0)  # lighting, offices, air handling


@dataclass(frozen=True, slots=True)
class BatteryConfig:
    id: str
    capacity_wh: float = rule(gt=0)  # about 150 MW of battery packs (press)
    max_power_w: float = rule(0)
    initial_soc: float = rule(0, 1)
    smoothing_s: float = rule(gt=0)  # grid draw follows the load's moving average


@dataclass(frozen=True, slots=True)
class FailureConfig:
    gpu_failures_per_gpu_hour: float = rule(0, 1)  # Llama 3: ~2e-5 interruptions/GPU-hour
    repair_hours_mean: float = rule(gt=0)
    repair_hours_min: float = rule(0)
    xid_weights: dict[str, float] = field(default_factory=dict)  # XID code -> relative weight


@dataclass(frozen=True, slots=True)
class ThermalConfig:
    time_constant_s: float = rule(gt=0)
    resistance_spread: float = rule(0, 1)  # lognormal sigma of per-GPU thermal resistance
    bad_plate_fraction: float = rule(0, 1)  # GPUs with a poor cold-plate contact
    bad_plate_factor: float = rule(1, 10)  # their thermal resistance multiplier
    hysteresis_c: float = rule(0, 20)
    clock_slew_per_s: float = rule(gt=0, hi=1)  # clock fraction change per second
    min_clock_fraction: float = rule(gt=0, hi=1)
    memory_temp_offset_c: float = rule(-20, 40)
    memory_temp_per_activity_c: float = rule(0, 40)


@dataclass(frozen=True, slots=True)
class ActivityConfig:
    """Board power between idle and compute power: weight of each phase (compute = clock^k)."""

    comm: float = rule(0, 1)
    straggler_wait: float = rule(0, 1)  # spinning in a collective, waiting for a peer
    allocated_idle: float = rule(0, 1)  # checkpoint, restart, data stall
    clock_power_exponent: float = rule(0, 4)


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Simulator parameters of one GPU model (peak FLOP/s and TDP come from twin.gpus)."""

    kernel_efficiency: float = rule(gt=0, hi=1)  # achieved/peak FLOP/s while computing
    compute_power_w: float = rule(gt=0)  # board power computing at full clock
    idle_w: float = rule(0)  # FACTS 2: 80-145 W observed (uncertain)
    max_sm_clock_mhz: float = rule(gt=0, hi=5000)
    idle_sm_clock_mhz: float = rule(0, 5000)
    thermal_resistance_c_per_w: float = rule(gt=0)  # board temp rise above coolant per W
    throttle_temp_c: float = rule(0, 130)  # FACTS 2: slowdown about 83-88 C (uncertain)
    nvlink_gbytes_s: float = rule(0)
    gpus_per_node: int = rule(1, 64)  # 8 for an HGX server, 4 for a GB200 compute tray
    nodes_per_rack: int = rule(1, 128)  # 8 servers (64 GPUs), 18 trays (NVL72)
    node_base_w: float = rule(0)  # non-GPU power of a node (CPUs, NICs, fans) when idle
    node_active_w: float = rule(0)  # extra non-GPU node power at full GPU activity
    rack_base_w: float = rule(0)  # per-rack power outside nodes (switches, NVSwitch trays)
    tensor_active_ratio: float = rule(0, 1)  # tensor pipe busy per unit of compute time
    dram_active_compute: float = rule(0, 1)
    dram_active_comm: float = rule(0, 1)


@dataclass(frozen=True, slots=True)
class HallConfig:
    id: str
    gpu_model: str
    gpus: int = rule(1)  # filled in racks of gpus_per_node x nodes_per_rack; last rack partial


@dataclass(frozen=True, slots=True)
class CampusConfig:
    id: str
    name: str
    hall: tuple[HallConfig, ...]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    params: float = rule(gt=0)
    layers: int = rule(1)
    heads: int = rule(1)
    head_dim: int = rule(1)
    seq_len: int = rule(1)
    dtype: str = rule(choices=("bf16", "fp8"), default="bf16")
    attention: bool = True  # count the 12*L*H*Q*T attention term


@dataclass(frozen=True, slots=True)
class JobConfig:
    id: str
    tenant: str
    model: ModelSpec
    gpus: int = rule(1)
    tensor: int = rule(1)
    pipeline: int = rule(1)
    tokens_per_step: float = rule(gt=0)
    work_share: str = rule(choices=("equal", "speed"))  # speed: heterogeneity-aware shares
    comm_overlap: float = rule(0, 1)  # fraction of the all-reduce hidden behind compute
    grad_bytes_per_param: float = rule(gt=0)
    checkpoint_interval_s: float = rule(gt=0)
    checkpoint_s: float = rule(0)  # blocking checkpoint time (allocated idle)
    restart_s: float = rule(0)  # failure -> running again from the last checkpoint
    count: int = rule(1, default=1)  # that many identical jobs, ids "<id>-1" ... "<id>-<count>"
    models: tuple[str, ...] = ()  # allowed GPU models; empty = any
    campus: str = ""  # "" = any campus
    placement: str = rule(choices=("pack", "spread"), default="pack")
    start_after: str = rule(duration=True, default="0s")
    run_for: str = rule(duration=True, default="")  # "" = runs to the end


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    id: str
    tenant: str
    gpus: dict[str, int]  # GPU model -> count
    usd_per_month: float = rule(gt=0)
    start: str = rule(instant=True)
    end: str = rule(instant=True)
    notice_days: int = rule(0)
    campus: str = ""  # take the GPUs from this campus only ("" = any)
    notice_after: str = rule(duration=True, default="")  # give notice this long after the epoch


@dataclass(frozen=True, slots=True)
class Scenario:
    scenario: ScenarioMeta
    telemetry: TelemetryConfig
    economics: EconomicsConfig
    network: NetworkConfig
    cooling: CoolingConfig
    battery: BatteryConfig
    failures: FailureConfig
    thermal: ThermalConfig
    activity: ActivityConfig
    generation: dict[str, GenerationParams]
    campus: tuple[CampusConfig, ...]
    link: tuple[LinkConfig, ...] = ()
    job: tuple[JobConfig, ...] = ()
    lease: tuple[LeaseConfig, ...] = ()
    price: tuple[PriceChange, ...] = ()

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def seed(self) -> int:
        return self.scenario.seed
