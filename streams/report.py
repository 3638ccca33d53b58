"""``twin report``: one run as an offline HTML page (``index.html``) with PNG figures beside it.

Every number and figure comes from a named query in ``queries/`` (each table says which, so an
analyst can rerun it with ``twin query``). The page references only its own PNG files: no
scripts, fonts or styles from the network.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import duckdb

from streams import plots
from streams.output import format_cell
from streams.queries import load_query, run_query

__all__ = ["FIGURES", "Report", "render_html", "report_data", "write_report"]

#: The figures the page shows: file name -> caption.
FIGURES: Final = {
    "mfu_by_generation.png": "MFU by GPU generation (and the facility) over event time.",
    "waste_ledger.png": "The energy ledger: facility power by cause over time, stacked, and "
    "the run's energy by cause.",
    "stragglers.png": "The racks whose GPUs set their jobs' pace, by the GPU-seconds the rest "
    "of the job waited for them.",
    "lease_economics.png": "Lease economics per tenant: revenue against energy cost, and per "
    "useful PFLOP-hour delivered.",
}
_MAX_POINTS: Final = 240

Rows = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Report:
    index: Path
    figures: tuple[Path, ...]


def _rows(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> Rows:
    cols, data = run_query(con, load_query(name), params)
    return [dict(zip(cols, r, strict=True)) for r in data]


def report_data(con: duckdb.DuckDBPyConnection, run_id: str, top: int = 15) -> dict[str, Any]:
    """Everything the page shows, as rows of the named queries."""
    run = con.execute(
        "SELECT scenario, seed, tick_ns, started_at FROM runs WHERE run_id = ?", [run_id]
    ).fetchone()
    facility = _rows(con, "facility_summary", run_id=run_id)
    ticks = int(facility[0]["ticks"] or 0) if facility else 0
    seconds = float(facility[0]["seconds"] or 0) if facility else 0.0
    bucket_s = 0.0
    if ticks > _MAX_POINTS and seconds > 0:  # at most about _MAX_POINTS points per line
        tick_s = run[2] / 1e9 if run and run[2] else seconds / ticks
        bucket_s = math.ceil(seconds / tick_s / _MAX_POINTS) * tick_s
    return {
        "run_id": run_id,
        "run": dict(zip(("scenario", "seed", "tick_ns", "started_at"), run or (), strict=False)),
        "bucket_s": bucket_s,
        "facility": facility,
        "recoverable": _rows(con, "recoverable_energy", run_id=run_id),
        "ledger": _rows(con, "waste_ledger", run_id=run_id),
        "ledger_over_time": _rows(con, "waste_ledger_over_time", run_id=run_id, bucket_s=bucket_s),
        "mfu_over_time": _rows(con, "mfu_over_time", run_id=run_id, bucket_s=bucket_s, scope="all"),
        "generations": _rows(con, "mfu_by_generation", run_id=run_id),
        "stragglers": _rows(con, "top_straggler_racks", run_id=run_id, top=top),
        "tenants": _rows(con, "tenant_economics", run_id=run_id),
        "jobs": _rows(con, "job_mfu_ranking", run_id=run_id, top=top),
        "placement": _rows(con, "campus_spanning_cost", run_id=run_id),
        "hotspots": _rows(con, "thermal_hotspots", run_id=run_id, top=10),
    }


def _figures(data: dict[str, Any], out: Path) -> tuple[Path, ...]:
    return (
        plots.plot_mfu_by_generation(data["mfu_over_time"], out / "mfu_by_generation.png"),
        plots.plot_waste_ledger(data["ledger_over_time"], data["ledger"], out / "waste_ledger.png"),
        plots.plot_stragglers(data["stragglers"], out / "stragglers.png"),
        plots.plot_lease_economics(data["tenants"], out / "lease_economics.png"),
    )


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{float(v):.2%}"


def _table(
    rows: Rows, query: str, run_id: str, title: str, columns: Sequence[str] | None = None
) -> str:
    cols = list(columns or (rows[0].keys() if rows else ()))
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = (
        "".join(
            "<tr>"
            + "".join(
                f'<td class="{"num" if isinstance(r.get(c), int | float) else "txt"}">'
                f"{_e(format_cell(r.get(c)))}</td>"
                for c in cols
            )
            + "</tr>"
            for r in rows
        )
        or f'<tr><td colspan="{max(len(cols), 1)}">no rows</td></tr>'
    )
    return (
        f"<h2>{_e(title)}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f'</table>\n<p class="src">twin query {_e(query)} --run {_e(run_id)}</p>\n'
    )


def _summary(data: dict[str, Any]) -> str:
    f = data["facility"][0] if data["facility"] else {}
    rec: dict[str, Any] = next((r for r in data["recoverable"] if r["scope"] == "facility"), {})
    run = data["run"]
    items: list[tuple[str, str]] = [
        ("run", data["run_id"]),
        ("scenario", str(run.get("scenario") or "-")),
        ("seed", str(run.get("seed") if run.get("seed") is not None else "-")),
        (
            "ticks / event time covered",
            f"{f.get('ticks') or 0} / {float(f.get('seconds') or 0):,.0f} s",
        ),
        ("installed GPUs", f"{float(f.get('gpus') or 0):,.0f}"),
        ("facility MFU", _pct(f.get("mfu"))),
        ("mean power", f"{float(f.get('mean_power_mw') or 0):,.3f} MW"),
        ("energy", f"{float(f.get('energy_mwh') or 0):,.4f} MWh"),
        ("energy cost", f"${float(f.get('energy_usd') or 0):,.2f}"),
        (
            "recoverable vs 40% MFU",
            f"{float(rec.get('recoverable_mwh') or 0):,.4f} MWh, "
            f"${float(rec.get('recoverable_usd') or 0):,.2f} "
            f"({_pct(rec.get('recoverable_share'))} of IT energy)",
        ),
        ("useful PFLOP-hours", f"{float(f.get('useful_pflop_h') or 0):,.1f}"),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return (
        f'<h2>Summary</h2>\n<table class="summary">{body}</table>\n'
        f'<p class="src">twin query facility_summary --run {_e(data["run_id"])}; '
        f"twin query recoverable_energy --run {_e(data['run_id'])}</p>\n"
    )


_CSS: Final = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; }
thead th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { text-align: left; background: #f7f7f7; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, p.src, p.meta { color: #666; font-size: 0.85em; } p.src { font-family: monospace; }
"""


def render_html(data: dict[str, Any], figures: Sequence[Path]) -> str:
    run_id = data["run_id"]
    figs = "".join(
        f'<figure><img src="{_e(p.name)}" alt="{_e(FIGURES[p.name])}">'
        f"<figcaption>{_e(FIGURES[p.name])}</figcaption></figure>\n"
        for p in figures
    )
    gen_cols = (
        "generation",
        "gpus",
        "mfu",
        "compute",
        "straggler_wait",
        "comm_stall",
        "allocated_idle",
        "unallocated",
        "down",
    )
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>Colossus 1 twin: run {_e(run_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Colossus 1 twin: run {_e(run_id)}</h1>",
        f'<p class="meta">Generated {_e(datetime.now().isoformat(timespec="seconds"))} from '
        "the twin's DuckDB file. Definitions: DESIGN.md; tables: docs/TABLES.md.</p>",
        _summary(data),
        "<h2>Figures</h2>\n" + figs,
        _table(data["ledger"], "waste_ledger", run_id, "Where the energy went"),
        _table(data["generations"], "mfu_by_generation", run_id, "MFU by generation", gen_cols),
        _table(data["stragglers"], "top_straggler_racks", run_id, "Top straggler racks"),
        _table(data["tenants"], "tenant_economics", run_id, "Tenant (lease) economics"),
        _table(data["jobs"], "job_mfu_ranking", run_id, "Jobs by MFU"),
        _table(
            data["placement"],
            "campus_spanning_cost",
            run_id,
            "Single-campus against cross-campus jobs",
        ),
        _table(data["hotspots"], "thermal_hotspots", run_id, "Thermal hotspots (racks)"),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def write_report(con: duckdb.DuckDBPyConnection, run_id: str, out: Path, top: int = 15) -> Report:
    """Write ``out/index.html`` and its PNG figures for ``run_id``."""
    out.mkdir(parents=True, exist_ok=True)
    data = report_data(con, run_id, top=top)
    figures = _figures(data, out)
    index = out / "index.html"
    index.write_text(render_html(data, figures), encoding="utf-8")
    return Report(index, figures)
