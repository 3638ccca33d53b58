"""The report's figures, drawn with matplotlib's Agg canvas (no display, no pyplot state) and
written as PNG files. Each function takes rows as the named queries return them (lists of
dicts) and writes one file; with no data it still writes a figure that says so."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "CAUSE_ORDER",
    "plot_lease_economics",
    "plot_mfu_by_generation",
    "plot_stragglers",
    "plot_waste_ledger",
]

Rows = Sequence[dict[str, Any]]

CAUSE_ORDER: Final = (
    "useful",
    "kernel_inefficiency",
    "straggler_wait",
    "comm_stall",
    "allocated_idle",
    "unallocated",
    "down",
    "overhead",
)
_CAUSE_COLOR: Final = {
    "useful": "#2e7d32",
    "kernel_inefficiency": "#9ccc65",
    "straggler_wait": "#ef6c00",
    "comm_stall": "#c62828",
    "allocated_idle": "#8e24aa",
    "unallocated": "#90a4ae",
    "down": "#37474f",
    "overhead": "#1e88e5",
}


def _figure(width: float = 9.0, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12)
    ax.set_axis_off()


def _time_axis(seconds: Sequence[float]) -> tuple[list[float], str]:
    span = max(seconds, default=0.0)
    if span >= 3 * 3600:
        return [s / 3600 for s in seconds], "event time since the run's start (h)"
    return [s / 60 for s in seconds], "event time since the run's start (min)"


def plot_mfu_by_generation(rows: Rows, path: Path, *, m_ref: float = 0.40) -> Path:
    """MFU over time, one line per generation and the facility (rows of mfu_over_time)."""
    fig = _figure()
    ax = fig.add_subplot()
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r["scope"] in ("generation", "facility") and r["mfu"] is not None:
            series.setdefault(str(r["scope_id"]), []).append((float(r["t_s"]), float(r["mfu"])))
    if not series:
        _empty(ax, "no MFU rows for this run")
        return _save(fig, path)
    for name, points in sorted(series.items(), key=lambda kv: kv[0] == "facility"):
        xs, label = _time_axis([p[0] for p in points])
        facility = name == "facility"
        ax.plot(
            xs,
            [100 * p[1] for p in points],
            label=name,
            marker="." if len(xs) < 60 else None,
            linewidth=2.5 if facility else 1.5,
            color="black" if facility else None,
            linestyle="--" if facility else "-",
        )
        ax.set_xlabel(label)
    ax.axhline(100 * m_ref, color="grey", linestyle=":", linewidth=1)
    ax.annotate(
        f"{m_ref:.0%} reference",
        (0, 100 * m_ref),
        xycoords=("axes fraction", "data"),
        xytext=(4, 3),
        textcoords="offset points",
        color="grey",
        fontsize=8,
    )
    ax.set_ylabel("MFU (%)")
    ax.set_ylim(bottom=0)
    ax.set_title("MFU by GPU generation over time")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _save(fig, path)


def plot_waste_ledger(over_time: Rows, totals: Rows, path: Path) -> Path:
    """Left: facility power by cause over time, stacked (rows of waste_ledger_over_time).
    Right: the run's energy by cause as one stacked bar (rows of waste_ledger)."""
    fig = _figure(11.0, 4.8)
    left, right = fig.subplots(1, 2, width_ratios=(3, 1))
    times = sorted({r["event_time"] for r in over_time})
    if not times:
        _empty(left, "no ledger rows for this run")
        _empty(right, "")
        return _save(fig, path)
    t0 = times[0]
    xs, label = _time_axis([(t - t0).total_seconds() for t in times])
    index = {t: k for k, t in enumerate(times)}
    mw = {c: [0.0] * len(times) for c in CAUSE_ORDER}
    for r in over_time:
        if r["cause"] in mw and r["hours_covered"]:
            mw[r["cause"]][index[r["event_time"]]] = float(r["mwh"]) / float(r["hours_covered"])
    causes = [c for c in CAUSE_ORDER if any(mw[c])]
    left.stackplot(
        xs,
        *(mw[c] for c in causes),
        labels=causes,
        step="post",
        colors=[_CAUSE_COLOR[c] for c in causes],
    )
    left.set_xlabel(label)
    left.set_ylabel("facility power by cause (MW)")
    left.set_title("Where the power went")
    left.grid(alpha=0.3)
    left.legend(loc="lower left", fontsize=7, ncols=2, framealpha=0.8)
    total = {str(r["cause"]): float(r["mwh"] or 0.0) for r in totals}
    bottom = 0.0
    for c in CAUSE_ORDER:
        v = total.get(c, 0.0)
        if v <= 0:
            continue
        right.bar(0, v, bottom=bottom, color=_CAUSE_COLOR[c], width=0.6)
        share = v / sum(total.values())
        if share >= 0.04:
            right.text(
                0,
                bottom + v / 2,
                f"{c}\n{share:.0%}",
                ha="center",
                va="center",
                fontsize=7,
                color="white",
            )
        bottom += v
    right.set_xticks([])
    right.set_ylabel("energy over the run (MWh)")
    right.set_title("Energy ledger")
    return _save(fig, path)


def plot_stragglers(rows: Rows, path: Path) -> Path:
    """The racks others waited for most (rows of top_straggler_racks), with their cost."""
    fig = _figure(9.0, max(3.0, 0.35 * len(rows) + 1.5))
    ax = fig.add_subplot()
    if not rows:
        _empty(ax, "no straggler cost recorded in this run")
        return _save(fig, path)
    names = [str(r["rack_id"]) for r in rows][::-1]
    waited = [float(r["gpu_seconds_waited"]) for r in rows][::-1]
    usd = [r["usd_waited"] for r in rows][::-1]
    bars = ax.barh(names, waited, color="#ef6c00")
    for bar, cost in zip(bars, usd, strict=True):
        if cost is not None:
            middle = bar.get_y() + bar.get_height() / 2
            ax.annotate(
                f"${float(cost):,.3g}",
                (bar.get_width(), middle),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
    ax.set_xlabel("GPU-seconds the rest of their jobs waited for them")
    ax.set_title("Top straggler racks (label: energy cost of the waiting)")
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.15)
    return _save(fig, path)


def plot_lease_economics(rows: Rows, path: Path) -> Path:
    """Per tenant: revenue against energy cost, and dollars per useful PFLOP-hour (rows of
    tenant_economics; tenants with no GPUs are left out)."""
    fig = _figure(11.0, 4.5)
    left, right = fig.subplots(1, 2)
    tenants = [r for r in rows if r["gpus"]]
    if not tenants:
        _empty(left, "no tenant rows for this run")
        _empty(right, "")
        return _save(fig, path)
    names = [str(r["tenant_id"]) for r in tenants]
    xs = list(range(len(names)))
    w = 0.38

    def vals(col: str) -> list[float]:
        return [float(r[col]) if r[col] is not None else 0.0 for r in tenants]

    left.bar(
        [x - w / 2 for x in xs], vals("revenue_usd"), w, label="lease revenue", color="#1565c0"
    )
    left.bar([x + w / 2 for x in xs], vals("energy_usd"), w, label="energy cost", color="#c62828")
    if max(vals("revenue_usd") + vals("energy_usd")) > 0:
        left.set_yscale("symlog", linthresh=1.0)
    left.set_xticks(xs, names)
    left.set_ylabel("US dollars over the run")
    left.set_title("Revenue and energy cost")
    left.legend(fontsize=8)
    right.bar(
        [x - w / 2 for x in xs], vals("usd_per_useful_pflop_h"), w, label="revenue", color="#1565c0"
    )
    right.bar(
        [x + w / 2 for x in xs],
        vals("energy_usd_per_useful_pflop_h"),
        w,
        label="energy cost",
        color="#c62828",
    )
    if max(vals("usd_per_useful_pflop_h") + vals("energy_usd_per_useful_pflop_h")) > 0:
        right.set_yscale("symlog", linthresh=1.0)
    right.set_xticks(xs, names)
    right.set_ylabel("US dollars per useful PFLOP-hour")
    right.set_title("Per useful PFLOP-hour delivered")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)
