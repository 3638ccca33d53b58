"""The ground-truth summary of a run: the figures DESIGN.md's scenario table asks for.

Facility: GPUs, power at full load (every GPU computing at full clock, cooling at the mean wet
bulb), mean power over the run, PUE, MFU and where the rest of the GPU time went; MFU per
generation; per tenant: GPUs, MFU, useful PFLOP-hours, energy and its cost, lease revenue and
dollars per useful PFLOP-hour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sim.cooling import facility_power
from sim.engine import Simulator
from sim.timefmt import NS_PER_S
from sim.truth import FRACTIONS, TruthTable

__all__ = ["GenerationFigures", "Summary", "TenantFigures", "full_load_power_w", "summarize"]


@dataclass(frozen=True, slots=True)
class GenerationFigures:
    model: str
    gpus: int
    mfu: float


@dataclass(frozen=True, slots=True)
class TenantFigures:
    tenant: str
    gpus: float
    mfu: float
    useful_pflop_h: float
    facility_mwh: float
    energy_cost_usd: float
    revenue_usd: float
    usd_per_useful_pflop_h: float | None


@dataclass(frozen=True, slots=True)
class Summary:
    scenario: str
    seed: int
    seconds: float
    gpus: int
    gpus_by_model: dict[str, int]
    racks: int
    full_load_it_mw: float
    full_load_facility_mw: float
    full_load_pue: float
    mean_it_mw: float
    mean_facility_mw: float
    pue: float
    mfu: float
    fractions: dict[str, float]
    energy_cost_usd: float
    generations: list[GenerationFigures] = field(default_factory=list)
    tenants: list[TenantFigures] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def full_load_power_w(sim: Simulator) -> tuple[float, float]:
    """(IT, facility) W with every GPU computing at full clock, at the mean wet bulb."""
    fp = facility_power(sim.plant, sim.topo, sim.rated_rack_w, 9.0)
    return fp.it_w, fp.total_w


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def summarize(sim: Simulator, truth: TruthTable) -> Summary:
    """Aggregate the closed ticks of ``truth`` (the run's rows) into a :class:`Summary`."""
    fac = truth.select("facility").columns
    ticks = int(fac["tick_end_ns"].shape[0])
    seconds = ticks * sim.scenario.telemetry.truth_tick_s
    it_j = float(fac["it_energy_j"].sum())
    fac_j = float(fac["facility_energy_j"].sum())
    full_it, full_total = full_load_power_w(sim)
    fractions = {name: float(np.mean(fac[name])) if ticks else 0.0 for name in FRACTIONS}
    gens = []
    for model in truth.ids("generation"):
        g = truth.select("generation", model).columns
        gens.append(
            GenerationFigures(
                model,
                sim.topo.model_counts()[model],
                _ratio(float(g["credited_flop"].sum()), float(g["peak_flop"].sum())),
            )
        )
    tenants = []
    start_ns = sim.epoch_ns
    end_ns = start_ns + round(seconds * NS_PER_S)
    per_s = 1.0 / (sim.scenario.economics.hours_per_month * 3600.0)
    for tenant in truth.ids("tenant"):
        c = truth.select("tenant", tenant).columns
        revenue = 0.0
        for w in sim.leases:
            if w.tenant == tenant:
                overlap = min(end_ns, w.effective_end_ns) - max(start_ns, w.start_ns)
                revenue += max(0, overlap) / NS_PER_S * w.usd_per_month * per_s
        useful = float(c["credited_flop"].sum()) / 1e15 / 3600.0
        tenants.append(
            TenantFigures(
                tenant=tenant,
                gpus=float(np.mean(c["gpus"])),
                mfu=_ratio(float(c["credited_flop"].sum()), float(c["peak_flop"].sum())),
                useful_pflop_h=useful,
                facility_mwh=float(c["facility_energy_j"].sum()) / 3.6e9,
                energy_cost_usd=float(c["energy_cost_usd"].sum()),
                revenue_usd=revenue,
                usd_per_useful_pflop_h=revenue / useful if useful > 0 and revenue > 0 else None,
            )
        )
    return Summary(
        scenario=sim.scenario.name,
        seed=sim.scenario.seed,
        seconds=seconds,
        gpus=sim.topo.n_gpus,
        gpus_by_model=sim.topo.model_counts(),
        racks=sim.topo.n_racks,
        full_load_it_mw=full_it / 1e6,
        full_load_facility_mw=full_total / 1e6,
        full_load_pue=_ratio(full_total, full_it),
        mean_it_mw=_ratio(it_j, seconds) / 1e6,
        mean_facility_mw=_ratio(fac_j, seconds) / 1e6,
        pue=_ratio(fac_j, it_j),
        mfu=_ratio(float(fac["credited_flop"].sum()), float(fac["peak_flop"].sum())),
        fractions=fractions,
        energy_cost_usd=float(fac["energy_cost_usd"].sum()),
        generations=gens,
        tenants=tenants,
    )
