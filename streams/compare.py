"""Two runs side by side (``twin compare RUN_A RUN_B``): the facility's KPIs, the waste ledger by
cause, recoverable energy, MFU per generation, single- vs cross-campus jobs and tenant
economics, each with the difference (B - A) and the ratio (B / A).

Every figure comes from a named query in ``queries/`` (the SQL analysts run), so a row here can
be reproduced with ``twin query NAME --run RUN``. Totals (MWh, dollars, PFLOP-hours) depend on
how long each run was; the rates next to them (MW, shares, MFU, $/PFLOP-h) do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from streams.queries import load_query, run_query

__all__ = ["CompareRow", "compare_runs", "compare_table", "run_metrics"]


@dataclass(frozen=True, slots=True)
class CompareRow:
    section: str
    metric: str
    unit: str
    a: float | None
    b: float | None

    @property
    def difference(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def ratio(self) -> float | None:
        return None if self.a is None or self.b is None or self.a == 0 else self.b / self.a


Metric = tuple[str, str, str]  # section, metric, unit

_FACILITY: tuple[tuple[str, str, str], ...] = (
    ("gpus", "installed GPUs", "GPUs"),
    ("seconds", "event time covered", "s"),
    ("mfu", "MFU", "fraction"),
    ("mean_power_mw", "mean power", "MW"),
    ("energy_mwh", "energy", "MWh"),
    ("energy_usd", "energy cost", "USD"),
    ("useful_pflop_h", "useful PFLOP-hours", "PFLOP-h"),
)
_RECOVERABLE = (
    ("recoverable_mwh", "recoverable vs 40% MFU", "MWh"),
    ("recoverable_usd", "recoverable vs 40% MFU, cost", "USD"),
    ("recoverable_share", "recoverable share of IT energy", "fraction"),
)
_TENANT = (
    ("revenue_usd", "revenue", "USD"),
    ("energy_usd", "energy cost", "USD"),
    ("useful_pflop_h", "useful PFLOP-hours", "PFLOP-h"),
    ("usd_per_useful_pflop_h", "revenue per useful PFLOP-h", "USD/PFLOP-h"),
    ("energy_usd_per_useful_pflop_h", "energy cost per useful PFLOP-h", "USD/PFLOP-h"),
)
_SPAN = (
    ("jobs", "jobs", "jobs"),
    ("gpu_hours", "GPU-hours", "GPU-h"),
    ("mfu", "MFU", "fraction"),
    ("comm_stall", "comm stall", "fraction"),
    ("energy_usd_per_useful_pflop_h", "energy cost per useful PFLOP-h", "USD/PFLOP-h"),
)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def run_metrics(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[Metric, float | None]:
    """Every figure of one run, keyed by (section, metric, unit), in display order."""

    def rows(name: str, **params: Any) -> list[dict[str, Any]]:
        cols, data = run_query(con, load_query(name), {"run_id": run_id, **params})
        return [dict(zip(cols, r, strict=True)) for r in data]

    out: dict[Metric, float | None] = {}
    fac = rows("facility_summary")
    f = fac[0] if fac else {}
    for col, label, unit in _FACILITY:
        out[("facility", label, unit)] = _num(f.get(col))
    energy_usd, useful = _num(f.get("energy_usd")), _num(f.get("useful_pflop_h"))
    out[("facility", "energy cost per useful PFLOP-h", "USD/PFLOP-h")] = (
        energy_usd / useful if energy_usd is not None and useful else None
    )
    rec = {(r["scope"], r["scope_id"]): r for r in rows("recoverable_energy")}
    facility_rec = next((r for (scope, _), r in rec.items() if scope == "facility"), {})
    for col, label, unit in _RECOVERABLE:
        out[("facility", label, unit)] = _num(facility_rec.get(col))
    for r in rows("waste_ledger"):
        out[("waste", f"{r['cause']}", "MWh")] = _num(r["mwh"])
        out[("waste", f"{r['cause']} share", "fraction")] = _num(r["share"])
    for r in rows("mfu_by_generation"):
        out[("generation", f"{r['generation']} MFU", "fraction")] = _num(r["mfu"])
        out[("generation", f"{r['generation']} GPUs", "GPUs")] = _num(r["gpus"])
    for r in rows("campus_spanning_cost"):
        for col, label, unit in _SPAN:
            out[("placement", f"{r['placement']}: {label}", unit)] = _num(r[col])
    for r in rows("tenant_economics"):
        for col, label, unit in _TENANT:
            out[("tenant", f"{r['tenant_id']}: {label}", unit)] = _num(r[col])
    return out


_SECTIONS = ("facility", "waste", "generation", "placement", "tenant")


def compare_runs(con: duckdb.DuckDBPyConnection, run_a: str, run_b: str) -> list[CompareRow]:
    """The figures of both runs, matched by name; a figure one run lacks is None there."""
    a, b = run_metrics(con, run_a), run_metrics(con, run_b)
    keys = list(a) + [k for k in b if k not in a]
    keys.sort(key=lambda k: _SECTIONS.index(k[0]))  # stable: run A's order, then B's extras
    return [CompareRow(k[0], k[1], k[2], a.get(k), b.get(k)) for k in keys]


def compare_table(
    rows: list[CompareRow], run_a: str, run_b: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Columns and rows for :mod:`streams.output`: the runs' own names head their columns."""
    name_a, name_b = (run_a, run_b) if run_a != run_b else (f"{run_a} (A)", f"{run_b} (B)")
    columns = ["section", "metric", "unit", name_a, name_b, "difference", "ratio"]
    return columns, [(r.section, r.metric, r.unit, r.a, r.b, r.difference, r.ratio) for r in rows]
