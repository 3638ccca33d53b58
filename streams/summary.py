"""The run summary ``twin run`` and ``make demo`` print: facility MFU, the waste ledger in MWh
and dollars, the top straggler racks and per-tenant economics, read from DuckDB with the named
queries in ``queries/`` (the same SQL analysts run with ``twin query``)."""

from __future__ import annotations

from typing import Any

import duckdb
from rich.console import Group
from rich.table import Table

from streams.queries import load_query, run_query

__all__ = ["render_summary", "summary_data"]


def summary_data(con: duckdb.DuckDBPyConnection, run_id: str, top: int = 5) -> dict[str, Any]:
    """Every figure of the summary as plain rows (also what ``--json`` prints)."""

    def rows(name: str, **params: Any) -> list[dict[str, Any]]:
        cols, data = run_query(con, load_query(name), {"run_id": run_id, **params})
        return [dict(zip(cols, r, strict=True)) for r in data]

    return {
        "run_id": run_id,
        "facility": rows("facility_summary"),
        "ledger": rows("waste_ledger"),
        "generations": rows("mfu_by_generation"),
        "stragglers": rows("top_straggler_racks", top=top),
        "tenants": rows("tenant_economics"),
    }


def _num(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def render_summary(data: dict[str, Any]) -> Group:
    """Rich tables for a terminal."""
    parts: list[Table] = []
    fac = data["facility"][0] if data["facility"] else None
    if fac is None or fac["ticks"] == 0:
        t = Table(title=f"run {data['run_id']}: no ticks landed yet")
        return Group(t)
    t = Table(title=f"Facility, run {data['run_id']}", show_header=False)
    t.add_row("ticks / event time", f"{fac['ticks']} / {fac['seconds']:.0f} s")
    t.add_row("GPUs", f"{fac['gpus']:,.0f}")
    t.add_row("MFU", f"{fac['mfu']:.2%}" if fac["mfu"] is not None else "-")
    t.add_row("mean power", f"{fac['mean_power_mw']:.2f} MW")
    t.add_row("energy", f"{fac['energy_mwh']:.3f} MWh, ${fac['energy_usd']:,.2f}")
    t.add_row("recoverable vs 40% MFU", f"{fac['recoverable_mwh']:.3f} MWh")
    t.add_row("useful PFLOP-hours", f"{fac['useful_pflop_h']:,.1f}")
    parts.append(t)

    t = Table(title="Where the energy went")
    for col in ("cause", "MWh", "$", "share"):
        t.add_column(col, justify="left" if col == "cause" else "right")
    for r in data["ledger"]:
        t.add_row(r["cause"], f"{r['mwh']:.4f}", f"{r['usd']:,.2f}", _num(r["share"], ".1%"))
    parts.append(t)

    t = Table(title="MFU by generation")
    for col in ("generation", "GPUs", "MFU", "compute", "straggler wait", "comm stall"):
        t.add_column(col, justify="left" if col == "generation" else "right")
    for r in data["generations"]:
        t.add_row(
            r["generation"], f"{r['gpus']:,.0f}", _num(r["mfu"], ".2%"), _num(r["compute"], ".1%"),
            _num(r["straggler_wait"], ".1%"), _num(r["comm_stall"], ".1%"),
        )
    parts.append(t)

    t = Table(title="Top straggler racks (GPU-seconds others waited for them)")
    for col in ("rack", "GPU-s waited", "kWh", "$"):
        t.add_column(col, justify="left" if col == "rack" else "right")
    for r in data["stragglers"]:
        t.add_row(
            r["rack_id"], f"{r['gpu_seconds_waited']:,.1f}", _num(r["kwh_waited"], ",.2f"),
            _num(r["usd_waited"], ",.2f"),
        )
    parts.append(t)

    t = Table(title="Tenants")
    cols = ("tenant", "GPUs", "MFU", "revenue $", "energy $", "useful PFLOP-h", "$/useful PFLOP-h")
    for col in cols:
        t.add_column(col, justify="left" if col == "tenant" else "right")
    for r in data["tenants"]:
        t.add_row(
            r["tenant_id"], f"{r['gpus']:,.0f}", _num(r["mfu"], ".2%"),
            f"{r['revenue_usd']:,.0f}", f"{r['energy_usd']:,.2f}", f"{r['useful_pflop_h']:,.1f}",
            _num(r["usd_per_useful_pflop_h"], ",.2f"),
        )
    parts.append(t)
    return Group(*parts)
