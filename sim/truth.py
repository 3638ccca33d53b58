"""Ground truth: the true time fractions, MFU and energy per scope and tick.

The simulator knows exactly what every GPU did in every interval. Per tick (``truth_tick_s``
of event time) and per scope (facility, campus, hall, generation, job, tenant) it records the
GPU-time-weighted fractions (compute, straggler_wait, comm_stall, allocated_idle, unallocated,
down: they sum to 1), MFU = credited model FLOPs / (sum of BF16 peak x time) over the scope's
GPUs (``credited_flop`` / ``peak_flop``, so ticks aggregate exactly), IT and facility energy (J)
and their cost. ``gpus`` is the mean number of GPUs in the scope over the tick. Job and tenant
membership may change inside a tick: the accumulators are flushed with the old membership before
every change, so attribution is exact. The twin's estimators are scored against these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from sim.topology import Topology
from twin.gpus import MODEL_NAMES

__all__ = ["FRACTIONS", "TRUTH_COLUMNS", "TruthAccumulator", "TruthTable"]

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]

FRACTIONS: Final = (
    "compute",
    "straggler_wait",
    "comm_stall",
    "allocated_idle",
    "unallocated",
    "down",
)
_QUANTITIES: Final = (*FRACTIONS, "credited_flop", "it_energy_j", "facility_energy_j")
_NQ: Final = len(_QUANTITIES)

#: Column order of the Parquet file and of :class:`TruthTable`.
TRUTH_COLUMNS: Final = (
    "tick_end_ns",
    "scope",
    "scope_id",
    *FRACTIONS,
    "mfu",
    "it_energy_j",
    "facility_energy_j",
    "gpus",
    "credited_flop",
    "peak_flop",
    "energy_cost_usd",
)


@dataclass(frozen=True, slots=True, eq=False)
class TruthTable:
    """Ground-truth rows as columns (see :data:`TRUTH_COLUMNS`)."""

    columns: dict[str, npt.NDArray[Any]]

    def __len__(self) -> int:
        return int(self.columns["tick_end_ns"].shape[0])

    def select(self, scope: str, scope_id: str | None = None) -> TruthTable:
        """Rows of one scope kind (and one id)."""
        mask = self.columns["scope"] == scope
        if scope_id is not None:
            mask &= self.columns["scope_id"] == scope_id
        return TruthTable({k: v[mask] for k, v in self.columns.items()})

    def ids(self, scope: str) -> list[str]:
        ids = self.columns["scope_id"][self.columns["scope"] == scope]
        return list(dict.fromkeys(ids.tolist()))

    def to_arrow(self) -> Any:
        return pa.table({k: self.columns[k] for k in TRUTH_COLUMNS})

    def write_parquet(self, path: str | Path) -> None:
        pq.write_table(self.to_arrow(), str(path), compression="zstd")

    @classmethod
    def read_parquet(cls, path: str | Path) -> TruthTable:
        table = pq.read_table(str(path))
        return cls({name: table.column(name).to_numpy() for name in table.column_names})

    @classmethod
    def concat(cls, parts: list[TruthTable]) -> TruthTable:
        if not parts:
            return cls.empty()
        return cls({k: np.concatenate([p.columns[k] for p in parts]) for k in TRUTH_COLUMNS})

    @classmethod
    def empty(cls) -> TruthTable:
        cols: dict[str, npt.NDArray[Any]] = {k: np.zeros(0) for k in TRUTH_COLUMNS}
        cols["tick_end_ns"] = np.zeros(0, np.int64)
        cols["scope"] = np.zeros(0, dtype=object)
        cols["scope_id"] = np.zeros(0, dtype=object)
        return cls(cols)


@dataclass(slots=True, eq=False)
class _Scope:
    kind: str
    ids: list[str]
    sums: F64  # (_NQ, n_ids) since the tick began
    seconds: F64  # GPU-seconds in the scope
    peak_seconds: F64  # sum of peak FLOP/s x seconds
    cost: F64  # USD


class TruthAccumulator:
    """Folds per-interval, per-GPU seconds into per-scope, per-tick truth rows."""

    def __init__(
        self, topo: Topology, tick_s: float, job_ids: list[str], tenant_ids: list[str]
    ) -> None:
        self.topo = topo
        self.tick_s = tick_s
        n = topo.n_gpus
        self.acc = np.zeros((_NQ, n))
        self.since_flush_s = 0.0
        present = sorted(set(topo.gpu_model.tolist()))
        self._gen_codes = present
        nr = topo.n_racks
        # rack -> scope one-hot matrices for the static scopes
        self._static: list[tuple[_Scope, F64, F64, F64]] = []
        rack_peak = np.add.reduceat(topo.peak_bf16, topo.rack_offsets[:-1])
        rack_n = np.diff(topo.rack_offsets).astype(np.float64)
        self._rack_peak = rack_peak
        self._rack_n = rack_n
        groups: list[tuple[str, list[str], I32]] = [
            ("facility", ["facility"], np.zeros(nr, np.int32)),
            ("campus", list(topo.campus_ids), topo.hall_campus[topo.rack_hall]),
            ("hall", list(topo.hall_ids), topo.rack_hall),
            (
                "generation",
                [MODEL_NAMES[c] for c in present],
                np.searchsorted(np.array(present), topo.rack_model).astype(np.int32),
            ),
        ]
        for kind, ids, code in groups:
            onehot = np.zeros((nr, len(ids)))
            onehot[np.arange(nr), code] = 1.0
            self._static.append(
                (self._new_scope(kind, ids), onehot, rack_n @ onehot, rack_peak @ onehot)
            )
        self.jobs = self._new_scope("job", list(job_ids))
        self.tenants = self._new_scope("tenant", list(tenant_ids))
        self._parts: list[TruthTable] = []

    @staticmethod
    def _new_scope(kind: str, ids: list[str]) -> _Scope:
        k = len(ids)
        return _Scope(kind, ids, np.zeros((_NQ, k)), np.zeros(k), np.zeros(k), np.zeros(k))

    def add(
        self,
        dt: float,
        fractions: tuple[F64, F64, F64, F64, F64, F64],
        credited: F64,
        it_energy_j: F64,
        facility_ratio: float,
    ) -> None:
        """One interval: seconds per GPU in each state, FLOPs credited, IT energy per GPU."""
        acc = self.acc
        for i, arr in enumerate(fractions):
            acc[i] += arr
        acc[6] += credited
        acc[7] += it_energy_j
        acc[8] += it_energy_j * facility_ratio
        self.since_flush_s += dt

    def flush(self, gpu_job: I32, gpu_tenant: I32, usd_per_mwh: float) -> None:
        """Attribute what accumulated since the last flush with the current membership."""
        span = self.since_flush_s
        if span <= 0.0:
            return
        usd_per_j = usd_per_mwh / 3.6e9
        per_rack = np.add.reduceat(self.acc, self.topo.rack_offsets[:-1], axis=1)
        for scope, onehot, count, peak in self._static:
            sums = per_rack @ onehot
            scope.sums += sums
            scope.seconds += count * span
            scope.peak_seconds += peak * span
            scope.cost += sums[8] * usd_per_j
        for scope, codes in ((self.jobs, gpu_job), (self.tenants, gpu_tenant)):
            if scope.ids:
                self._flush_dynamic(scope, codes, per_rack, span, usd_per_j)
        self.acc.fill(0.0)
        self.since_flush_s = 0.0

    def _flush_dynamic(
        self, scope: _Scope, codes: I32, per_rack: F64, span: float, usd_per_j: float
    ) -> None:
        """Job or tenant sums. Racks whose GPUs all share one code contribute their rack sums;
        only the GPUs of mixed racks are binned one by one."""
        topo = self.topo
        k = len(scope.ids)
        starts = topo.rack_offsets[:-1]
        lo = np.minimum.reduceat(codes, starts)
        hi = np.maximum.reduceat(codes, starts)
        pure = (lo == hi) & (lo >= 0)
        rc = lo[pure]
        sums = np.stack(
            [np.bincount(rc, weights=per_rack[q][pure], minlength=k) for q in range(_NQ)]
        )
        seconds = np.bincount(rc, weights=self._rack_n[pure], minlength=k)
        peak = np.bincount(rc, weights=self._rack_peak[pure], minlength=k)
        mixed = ~pure & (hi >= 0)
        if mixed.any():
            gpus = np.flatnonzero(mixed[topo.gpu_rack] & (codes >= 0))
            c = codes[gpus]
            sums += np.stack(
                [np.bincount(c, weights=self.acc[q][gpus], minlength=k) for q in range(_NQ)]
            )
            seconds += np.bincount(c, minlength=k)
            peak += np.bincount(c, weights=topo.peak_bf16[gpus], minlength=k)
        scope.sums += sums
        scope.seconds += seconds * span
        scope.peak_seconds += peak * span
        scope.cost += sums[8] * usd_per_j

    def end_tick(
        self, tick_end_ns: int, gpu_job: I32, gpu_tenant: I32, usd_per_mwh: float
    ) -> TruthTable:
        """Close the tick: flush, emit its rows, reset."""
        self.flush(gpu_job, gpu_tenant, usd_per_mwh)
        scopes = [s for s, *_ in self._static] + [self.jobs, self.tenants]
        cols: dict[str, list[Any]] = {k: [] for k in TRUTH_COLUMNS}
        tick = self.tick_s
        for scope in scopes:
            for j, sid in enumerate(scope.ids):
                sec = float(scope.seconds[j])
                if sec <= 0.0:
                    continue
                s = scope.sums[:, j]
                cols["tick_end_ns"].append(tick_end_ns)
                cols["scope"].append(scope.kind)
                cols["scope_id"].append(sid)
                for q, name in enumerate(FRACTIONS):
                    cols[name].append(float(s[q]) / sec)
                cols["mfu"].append(float(s[6]) / float(scope.peak_seconds[j]))
                cols["credited_flop"].append(float(s[6]))
                cols["peak_flop"].append(float(scope.peak_seconds[j]))
                cols["it_energy_j"].append(float(s[7]))
                cols["facility_energy_j"].append(float(s[8]))
                cols["gpus"].append(sec / tick)
                cols["energy_cost_usd"].append(float(scope.cost[j]))
            scope.sums.fill(0.0)
            scope.seconds.fill(0.0)
            scope.peak_seconds.fill(0.0)
            scope.cost.fill(0.0)
        table = TruthTable(
            {
                k: (
                    np.asarray(v, dtype=object)
                    if k in ("scope", "scope_id")
                    else np.asarray(v, dtype=np.int64 if k == "tick_end_ns" else np.float64)
                )
                for k, v in cols.items()
            }
        )
        self._parts.append(table)
        return table

    def table(self) -> TruthTable:
        """All closed ticks so far."""
        return TruthTable.concat(self._parts)
