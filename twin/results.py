"""What closing a tick returns: KPIs per scope, the energy ledger, straggler rankings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["KPI_COLUMNS", "SCOPES", "Ledger", "ScopeTable", "Stragglers", "TickResult"]

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

    def scope(self, name: str) -> ScopeTable:
        return self.scopes[name]

    def kpi(self, scope: str, scope_id: str, column: str) -> float:
        table = self.scopes[scope]
        return float(table.column(column)[table.ids.index(scope_id)])
