"""What closing a tick returns: KPIs per scope, the energy ledger, straggler rankings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "KPI_COLUMNS",
    "QUANTITIES",
    "SCOPES",
    "Ledger",
    "PartialTick",
    "ScopeTable",
    "Stragglers",
    "TickResult",
]

I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]

#: Scope kinds, in the order :class:`TickResult` lists them.
SCOPES: Final[tuple[str, ...]] = (
    "facility",
    "campus",
    "hall",
    "rack",
    "generation",
    "job",
    "tenant",
)

#: KPI columns of every scope table. Fractions are GPU-time weighted; energies in joules over
#: the tick; ``*_j`` ledger categories sum to ``it_energy_j``; money in US dollars.
KPI_COLUMNS: Final[tuple[str, ...]] = (
    "gpus",  # mean number of GPUs in the scope over the tick
    "compute",
    "straggler_wait",
    "comm_stall",
    "allocated_idle",
    "unallocated",
    "down",
    "mfu",  # credited model FLOPs / (sum of peak FLOP/s x dt)
    "flops",  # credited model FLOPs
    "peak_flops",  # sum of peak FLOP/s x dt
    "gpu_energy_j",  # GPU board energy (telemetry)
    "it_energy_j",  # board + share of racks' non-GPU power
    "overhead_j",  # share of facility overhead (cooling, conversion), pro rata IT energy
    "energy_j",  # it + overhead
    "power_w",  # energy_j / dt
    "useful_j",
    "kernel_inefficiency_j",
    "straggler_wait_j",
    "comm_stall_j",
    "allocated_idle_j",
    "unallocated_j",
    "down_j",
    "recoverable_j",  # it_energy_j x max(0, 1 - mfu / m_ref)
    "energy_usd",  # energy_j at the tick's price
    "revenue_usd",  # lease revenue accrued in the tick
    "useful_pflop_h",  # credited model FLOPs in PFLOP-hours
    "usd_per_useful_pflop_h",  # revenue / useful PFLOP-hours (NaN when none)
    "energy_usd_per_useful_pflop_h",
    "straggler_cost_gpu_s",  # GPU-seconds others waited for the scope's GPUs
)
_COL: Final = {name: k for k, name in enumerate(KPI_COLUMNS)}

#: Rows of the additive matrix of a :class:`PartialTick` (summed over a scope's cells; any two
#: disjoint sets of cells add). GPU-time and time by category in GPU-ns; energies in joules;
#: FLOPs; straggler cost in GPU-seconds; lease revenue in US dollars (leases holding GPUs).
QUANTITIES: Final[tuple[str, ...]] = (
    "gpu_ns",
    "compute_ns",
    "straggler_wait_ns",
    "comm_stall_ns",
    "allocated_idle_ns",
    "unallocated_ns",
    "down_ns",
    "flops",
    "peak_flops",
    "gpu_energy_j",
    "it_energy_j",
    "useful_j",
    "kernel_inefficiency_j",
    "straggler_wait_j",
    "comm_stall_j",
    "allocated_idle_j",
    "unallocated_j",
    "down_j",
    "straggler_cost_gpu_s",
    "revenue_usd",
)


@dataclass(frozen=True, slots=True, eq=False)
class ScopeTable:
    """One scope kind's KPIs: ``columns[k]`` is KPI_COLUMNS[k] for every id (column-major)."""

    scope: str
    ids: tuple[str, ...]
    columns: F64  # shape (len(KPI_COLUMNS), len(ids))

    def column(self, name: str) -> F64:
        out: F64 = self.columns[_COL[name]]
        return out

    def row(self, scope_id: str) -> dict[str, float]:
        k = self.ids.index(scope_id)
        return {name: float(v) for name, v in zip(KPI_COLUMNS, self.columns[:, k], strict=True)}

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class Ledger:
    """The facility's energy over the tick, by cause (joules). Closes to float rounding:
    ``facility_j == useful + kernel_inefficiency + waits + idle + unallocated + down + overhead``.
    """

    facility_j: float
    useful_j: float
    kernel_inefficiency_j: float
    straggler_wait_j: float
    comm_stall_j: float
    allocated_idle_j: float
    unallocated_j: float
    down_j: float
    overhead_j: float
    it_j: float
    meter_total_j: float  # the facility meter over the tick
    meter_it_j: float

    @property
    def parts_j(self) -> float:
        return (
            self.useful_j
            + self.kernel_inefficiency_j
            + self.straggler_wait_j
            + self.comm_stall_j
            + self.allocated_idle_j
            + self.unallocated_j
            + self.down_j
            + self.overhead_j
        )

    @property
    def residual_j(self) -> float:
        return self.facility_j - self.parts_j


@dataclass(frozen=True, slots=True, eq=False)
class Stragglers:
    """Top N by straggler cost (GPU-seconds the rest of their jobs waited for them)."""

    gpu_index: I32
    gpu_cost_gpu_s: F64
    rack_ids: tuple[str, ...]
    rack_cost_gpu_s: F64
    generation_ids: tuple[str, ...]
    generation_cost_gpu_s: F64


@dataclass(frozen=True, slots=True, eq=False)
class PartialTick:
    """The additive form of one tick over a set of owned racks: what
    :func:`twin.kernels.merge_partials` needs to merge the partials of several workers into the
    facility's :class:`TickResult` (see :mod:`twin.kernels`).

    ``sums[:, j]`` holds the summed :data:`QUANTITIES` (``quantities`` names the rows) of scope
    row j; rows are the scopes' ids in :data:`SCOPES` order (``ids[k]`` for ``SCOPES[k]``),
    concatenated. Racks the worker does not own are present with zero sums. The remaining
    fields are the same in every worker (each folds every low-volume event) and are counted
    once when merging: ``lost_revenue_usd`` (revenue of leases holding no GPUs, per tenant row),
    the facility meter, the price and ``m_ref``, the ``events`` counter. The straggler top lists
    (at most ``top_n`` each, ranked by cost, ties by lowest index) cover the owned racks only.
    """

    start_ns: int
    end_ns: int
    ids: tuple[tuple[str, ...], ...]  # scope ids, SCOPES order
    quantities: tuple[str, ...]  # row names of ``sums`` (QUANTITIES)
    sums: F64  # shape (len(quantities), sum of len(ids[k]))
    lost_revenue_usd: F64  # per tenant row (ids[SCOPES.index("tenant")])
    meter_total_j: float
    meter_it_j: float
    usd_per_mwh: float
    m_ref: float
    top_n: int
    straggler_gpu_index: I32
    straggler_gpu_cost_gpu_s: F64
    straggler_rack_ids: tuple[str, ...]
    straggler_rack_index: I32  # the racks' dense index (ties rank the lowest first)
    straggler_rack_cost_gpu_s: F64
    counts: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, ints, floats and strings (orjson-able); :meth:`from_dict` inverts it
        exactly (orjson writes floats in their shortest round-tripping form)."""
        return {
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "scopes": list(SCOPES),
            "ids": [list(ids) for ids in self.ids],
            "quantities": list(self.quantities),
            "sums": self.sums.tolist(),
            "lost_revenue_usd": self.lost_revenue_usd.tolist(),
            "meter_total_j": self.meter_total_j,
            "meter_it_j": self.meter_it_j,
            "usd_per_mwh": self.usd_per_mwh,
            "m_ref": self.m_ref,
            "top_n": self.top_n,
            "straggler_gpu_index": self.straggler_gpu_index.tolist(),
            "straggler_gpu_cost_gpu_s": self.straggler_gpu_cost_gpu_s.tolist(),
            "straggler_rack_ids": list(self.straggler_rack_ids),
            "straggler_rack_index": self.straggler_rack_index.tolist(),
            "straggler_rack_cost_gpu_s": self.straggler_rack_cost_gpu_s.tolist(),
            "counts": dict(self.counts),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> PartialTick:
        if tuple(d["scopes"]) != SCOPES:
            raise ValueError(f"partial tick scopes {d['scopes']} are not {list(SCOPES)}")
        ids = tuple(tuple(str(i) for i in block) for block in d["ids"])
        quantities = tuple(str(name) for name in d["quantities"])
        rows = sum(len(block) for block in ids)
        sums = np.array(d["sums"], dtype=np.float64).reshape(len(quantities), rows)
        return PartialTick(
            start_ns=int(d["start_ns"]),
            end_ns=int(d["end_ns"]),
            ids=ids,
            quantities=quantities,
            sums=sums,
            lost_revenue_usd=np.array(d["lost_revenue_usd"], dtype=np.float64),
            meter_total_j=float(d["meter_total_j"]),
            meter_it_j=float(d["meter_it_j"]),
            usd_per_mwh=float(d["usd_per_mwh"]),
            m_ref=float(d["m_ref"]),
            top_n=int(d["top_n"]),
            straggler_gpu_index=np.array(d["straggler_gpu_index"], dtype=np.int32),
            straggler_gpu_cost_gpu_s=np.array(d["straggler_gpu_cost_gpu_s"], dtype=np.float64),
            straggler_rack_ids=tuple(str(r) for r in d["straggler_rack_ids"]),
            straggler_rack_index=np.array(d["straggler_rack_index"], dtype=np.int32),
            straggler_rack_cost_gpu_s=np.array(d["straggler_rack_cost_gpu_s"], dtype=np.float64),
            counts={str(k): int(v) for k, v in d["counts"].items()},
        )


@dataclass(frozen=True, slots=True, eq=False)
class TickResult:
    start_ns: int
    end_ns: int
    dt_s: float
    usd_per_mwh: float
    m_ref: float
    scopes: Mapping[str, ScopeTable]
    ledger: Ledger
    stragglers: Stragglers
    counts: Mapping[str, int]  # the tick's counters (events, samples, duplicates, late, ...)
    partial: PartialTick  # the additive form the KPIs were derived from

    def scope(self, name: str) -> ScopeTable:
        return self.scopes[name]

    def kpi(self, scope: str, scope_id: str, column: str) -> float:
        table = self.scopes[scope]
        return float(table.column(column)[table.ids.index(scope_id)])
