"""One tick of every twin kernel over 220,000 GPUs, against pandas and DuckDB re-aggregations.

Facility: 150,000 H100 + 50,000 H200 in 64-GPU racks and 20,000 GB200 in 72-GPU racks (3,404
racks) over 3 campuses x 4 halls; 20 jobs over 90% of the GPUs (some span generations), two
leases (two tenants). One tick (10 s) of 1 Hz telemetry, job steps, PDU and meter readings is
folded, a tick is closed (so the cells are in their steady, compacted order), and a second
tick is folded. Then:

- ``twin``: :func:`twin.kernels.compute_tick` -- every KPI of every scope (facility, campus,
  hall, rack, generation, job, tenant), the ledger and straggler rankings -- timed repeatedly
  on that state (it reads the state only).
- ``close_tick``: the kernels plus the accumulator reset (on copies of the state).
- ``pandas`` / ``duckdb``: the same state re-aggregated the way a row-oriented twin would, from
  one row per GPU (the cells' additive quantities spread evenly over their GPUs): the 20 summed
  quantities per scope, via ``DataFrame.groupby(...).sum()`` per scope kind, and one DuckDB
  query with ``GROUPING SETS``. They only sum; the twin's figure also includes the per-cell
  quantities and every derived KPI, so the ratios are conservative. The same baselines on the
  cell table (one row per cell) are reported too.

Run: ``.venv/bin/python bench/bench_kernels.py [--repeat 300]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd
from machine import machine_lines

from twin import TwinState, close_tick, fold_events
from twin import synthetic as syn
from twin.batches import Batch
from twin.kernels import _cell_quantities, _plan, compute_tick
from twin.state import TwinState as _State

S = 1_000_000_000
T0 = 1_750_000_000 * S
PARTS = (("H100", 150_000, 64), ("H200", 50_000, 64), ("GB200", 20_000, 72))


def build(n_jobs: int = 20, seed: int = 7) -> tuple[TwinState, syn.Layout]:
    rng = np.random.default_rng(seed)
    layout = syn.facility(PARTS, campuses=3, halls_per_campus=4, ts_ns=T0)
    state = TwinState()
    events, job_of = syn.start_jobs(layout, n_jobs, ts_ns=T0)
    tokens = syn.tokens_for_mfu(job_of, n_jobs, 0.35)
    log: list[Batch] = [list(layout.events), events]
    seq = 0
    for second in range(20):
        t = T0 + second * S
        log.append(syn.telemetry(layout, t, second, rng=rng, job_of_gpu=job_of))
        if second % 2 == 1:
            log.append(syn.job_steps(tokens, ts_ns=t + S // 2, seq=seq, step=second))
            seq += n_jobs
        log.append(
            syn.power_readings(layout, t, second, it_power_w=1.6e8, total_power_w=1.8e8)
        )
    results = fold_events(state, log)
    assert len(results) == 1, "one tick closed, the second one open"
    return state, layout


def timed(fn: Callable[[], object], repeat: int) -> np.ndarray:
    fn()
    out = np.empty(repeat)
    gc.disable()
    try:
        for k in range(repeat):
            t = time.perf_counter()
            fn()
            out[k] = time.perf_counter() - t
    finally:
        gc.enable()
    return out * 1e3


def tables(state: _State) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cells' additive quantities as a per-cell and a per-GPU table, with scope keys."""
    plan = _plan(state)
    q, _, _ = _cell_quantities(state, plan, state.tick_start_ns, state.tick_end_ns)
    n = state.n["cell"]
    rack = state.cell_rack[:n]
    lease = state.cell_lease[:n]
    keys = {
        "campus": state.rack_campus[rack],
        "hall": state.rack_hall[rack],
        "rack": rack,
        "generation": state.rack_model[rack].astype(np.int32),
        "job": state.cell_job[:n],
        "tenant": np.where(lease >= 0, state.lease_tenant[np.maximum(lease, 0)], 0),
    }
    cols = {f"q{k}": q[k] for k in range(q.shape[0])}
    cells = pd.DataFrame({**keys, **cols})
    count = state.cell_n[:n]
    per_gpu = np.repeat(np.arange(n), count)
    gpus = pd.DataFrame(
        {
            **{k: v[per_gpu] for k, v in keys.items()},
            **{k: (v / np.maximum(count, 1))[per_gpu] for k, v in cols.items()},
        }
    )
    return cells, gpus


def pandas_groupby(frame: pd.DataFrame) -> list[pd.DataFrame]:
    qcols = [c for c in frame.columns if c.startswith("q")]
    out = [frame[qcols].sum().to_frame().T]
    for key in ("campus", "hall", "rack", "generation", "job", "tenant"):
        out.append(frame.groupby(key, sort=False)[qcols].sum())
    return out


SQL = """
SELECT campus, hall, rack, generation, job, tenant, {sums}
FROM t
GROUP BY GROUPING SETS ((), (campus), (hall), (rack), (generation), (job), (tenant))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--markdown", action="store_true", help="print a RESULTS.md section")
    args = parser.parse_args()

    t = time.perf_counter()
    state, layout = build()
    build_s = time.perf_counter() - t
    start, end = state.tick_start_ns, state.tick_end_ns
    kernel = timed(lambda: compute_tick(state, start, end), args.repeat)
    copies = [state.copy() for _ in range(min(args.repeat, 30))]
    it = iter(copies)
    close = timed(lambda: close_tick(next(it)), len(copies) - 1)

    cells, gpus = tables(state)
    con = duckdb.connect()
    sums = ", ".join(f"sum({c}) AS {c}" for c in cells.columns if c.startswith("q"))
    sql = SQL.format(sums=sums)
    baselines: dict[str, np.ndarray] = {}
    reps = max(5, args.repeat // 20)
    for name, frame in (("per-GPU rows", gpus), ("per-cell rows", cells)):
        baselines[f"pandas groupby, {name}"] = timed(lambda f=frame: pandas_groupby(f), reps)
        con.register("t", frame)
        baselines[f"DuckDB GROUPING SETS, {name}"] = timed(
            lambda: con.execute(sql).fetchnumpy(), reps
        )
        con.unregister("t")

    med = float(np.median(kernel))
    rows = [
        ("twin compute_tick (all kernels)", kernel),
        ("twin close_tick (kernels + reset)", close),
        *baselines.items(),
    ]
    print("\n".join(machine_lines("pandas", "duckdb")))
    print(
        f"facility: {layout.n_gpus} GPUs, {len(layout.rack_ids)} racks, "
        f"{state.n['cell']} cells, {state.n['job']} jobs, {state.n['tenant'] - 1} tenants; "
        f"built and folded 2 ticks in {build_s:.1f} s"
    )
    header = "| what | median ms | p95 ms | min ms | x twin median |"
    lines = [header, "|---|---:|---:|---:|---:|"]
    for name, ms in rows:
        m = float(np.median(ms))
        lines.append(
            f"| {name} | {m:.3f} | {np.percentile(ms, 95):.3f} | {ms.min():.3f} | {m / med:.1f} |"
        )
    print("\n".join(lines))
    target = "meets" if med <= 0.5 else "misses"
    print(f"target <= 0.5 ms per tick: twin median {med:.3f} ms ({target})")


if __name__ == "__main__":
    main()
