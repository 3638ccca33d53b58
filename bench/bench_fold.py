"""Folding GPU telemetry into the twin: GPU samples per second (target >= 5 million/s).

The facility of ``bench_kernels.py`` (220,000 GPUs, 3,404 rack messages per second, 20 jobs
stepping, two leases). Telemetry batches are built up front (what the edge hands the core after
validation: ``--batch-s`` seconds of every rack's 1 Hz messages concatenated), then folded:

- ``apply``: :func:`twin.apply` alone -- dedup, the estimator, the per-cell integer sums;
- ``fold_events``: the driver, with job steps between batches and ticks closing every 10 s
  (kernels included), i.e. the whole event-time loop of an offline replay.

Run: ``.venv/bin/python bench/bench_fold.py [--seconds 60] [--batch-s 1]``.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from bench_kernels import PARTS, T0, S
from machine import machine_lines

from twin import TwinState, apply, fold_events
from twin import synthetic as syn
from twin.batches import Batch, TelemetryBatch


def concat(batches: list[TelemetryBatch]) -> TelemetryBatch:
    """Several batches as one (each keeps its own source dictionary)."""
    sources: list[str] = []
    codes = []
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for b in batches:
        codes.append(b.source_code + len(sources))
        sources.extend(b.source_ids)
        offsets.append(b.row_offsets[1:] + base)
        base += b.n_samples

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(b, name) for b in batches])

    return TelemetryBatch(
        source_ids=tuple(sources),
        source_code=np.concatenate(codes).astype(np.int32),
        seq=cat("seq"),
        ts_ns=cat("ts_ns"),
        interval_ns=cat("interval_ns"),
        row_offsets=np.concatenate(offsets),
        gpu_index=cat("gpu_index"),
        power_w=cat("power_w"),
        temp_c=cat("temp_c"),
        memory_temp_c=cat("memory_temp_c"),
        sm_clock_mhz=cat("sm_clock_mhz"),
        gpu_util_pct=cat("gpu_util_pct"),
        sm_active=cat("sm_active"),
        tensor_active=cat("tensor_active"),
        dram_active=cat("dram_active"),
        nvlink_bytes=cat("nvlink_bytes"),
        xid=cat("xid"),
        job_ids=(),
        job_code=cat("job_code"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="seconds of telemetry to fold")
    parser.add_argument("--batch-s", type=int, default=1, help="seconds of telemetry per batch")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(11)
    layout = syn.facility(PARTS, campuses=3, halls_per_campus=4, ts_ns=T0)
    start, job_of = syn.start_jobs(layout, 20, ts_ns=T0)
    tokens = syn.tokens_for_mfu(job_of, 20, 0.35)
    per_second = [
        syn.telemetry(layout, T0 + k * S, k + 1, rng=rng, job_of_gpu=job_of)
        for k in range(args.seconds)
    ]
    batches = [
        concat(per_second[k : k + args.batch_s]) for k in range(0, args.seconds, args.batch_s)
    ]
    samples = sum(b.n_samples for b in batches)
    steps = [
        syn.job_steps(tokens, ts_ns=T0 + k * S + S // 2, seq=k * 20, step=k + 1)
        for k in range(args.seconds)
    ]

    def fresh() -> TwinState:
        state = TwinState()
        fold_events(state, [list(layout.events), start])
        return state

    rates: dict[str, list[float]] = {"apply": [], "fold_events": []}
    for _ in range(args.repeat):
        state = fresh()
        gc.collect()
        gc.disable()
        t = time.perf_counter()
        for b in batches:
            apply(state, b)
        rates["apply"].append(samples / (time.perf_counter() - t))
        gc.enable()
        state = fresh()
        log: list[Batch] = []
        for k, b in enumerate(batches):
            log.append(b)
            log.extend(steps[k * args.batch_s : (k + 1) * args.batch_s])
        gc.collect()
        gc.disable()
        t = time.perf_counter()
        ticks = fold_events(state, log)
        rates["fold_events"].append(samples / (time.perf_counter() - t))
        gc.enable()
    print("\n".join(machine_lines()))
    print(
        f"{layout.n_gpus} GPUs, {args.seconds} s of 1 Hz telemetry = {samples:,} samples in "
        f"{len(batches)} batches of {batches[0].n_samples:,}; {len(ticks)} ticks closed"
    )
    print("| path | best M samples/s | median M samples/s |")
    print("|---|---:|---:|")
    for name, values in rates.items():
        v = np.asarray(values) / 1e6
        print(f"| {name} | {v.max():.2f} | {np.median(v):.2f} |")
    best = max(rates["apply"]) / 1e6
    print(f"target >= 5 M samples/s: apply best {best:.2f} ({'meets' if best >= 5 else 'misses'})")


if __name__ == "__main__":
    main()
