"""Inter-campus links: latency from fiber length, bandwidth, loss; ageing links degrade at times.

A job spanning campuses gets an equal share of the goodput of the links joining them (shared with
the other spanning jobs that are communicating); its inter-campus hop latency is the worst link's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sim.comm import link_goodput
from sim.config import LinkConfig, NetworkConfig

__all__ = ["Link", "Network"]


@dataclass(slots=True, eq=False)
class Link:
    cfg: LinkConfig
    latency_us: float
    bandwidth_gbps: float
    loss_fraction: float
    degraded_until_s: float = -1.0

    @property
    def link_id(self) -> str:
        return self.cfg.id

    def fields(self) -> dict[str, object]:
        return {
            "link_id": self.cfg.id,
            "campus_a": self.cfg.campus_a,
            "campus_b": self.cfg.campus_b,
            "latency_us": round(self.latency_us, 3),
            "bandwidth_gbps": self.bandwidth_gbps,
            "loss_fraction": self.loss_fraction,
        }


@dataclass(slots=True, eq=False)
class Network:
    cfg: NetworkConfig
    links: list[Link] = field(default_factory=list)

    @classmethod
    def build(cls, cfg: NetworkConfig, links: tuple[LinkConfig, ...]) -> Network:
        out = [
            Link(
                lk,
                cfg.fiber_us_per_km * lk.route_km + cfg.equipment_latency_us,
                lk.bandwidth_gbps,
                lk.loss_fraction,
            )
            for lk in links
        ]
        return cls(cfg, out)

    @property
    def nic_bytes_s(self) -> float:
        return self.cfg.nic_gbps / 8.0 * 1e9 * self.cfg.effective_throughput

    def between(self, campuses: set[str]) -> list[Link]:
        return [lk for lk in self.links if {lk.cfg.campus_a, lk.cfg.campus_b} <= campuses]

    def inter_campus(self, campuses: set[str], sharing: int) -> tuple[float, float]:
        """(bytes/s this job gets, hop latency s) between ``campuses``; (0, 0) without links."""
        links = self.between(campuses)
        if not links:
            return 0.0, 0.0
        c = self.cfg
        goodput = sum(
            lk.bandwidth_gbps
            / 8.0
            * 1e9
            * link_goodput(lk.loss_fraction, c.loss_penalty, c.min_goodput)
            for lk in links
        )
        latency = max(lk.latency_us for lk in links) * 1e-6
        return goodput / max(1, sharing), latency

    def step(self, rng: np.random.Generator, t: float, dt: float) -> list[Link]:
        """Start and end loss episodes during [t, t + dt); returns the links that changed."""
        c = self.cfg
        changed: list[Link] = []
        for lk in self.links:
            if 0 <= lk.degraded_until_s <= t + dt:
                lk.loss_fraction = lk.cfg.loss_fraction
                lk.degraded_until_s = -1.0
                changed.append(lk)
            elif (
                lk.degraded_until_s < 0
                and c.degradations_per_link_hour > 0
                and rng.random() < c.degradations_per_link_hour * dt / 3600.0
            ):
                lk.loss_fraction = max(lk.cfg.loss_fraction, c.degradation_loss_fraction)
                lk.degraded_until_s = t + rng.exponential(c.degradation_minutes_mean * 60.0)
                changed.append(lk)
        return changed
