"""How well the twin's time-fraction estimator and MFU match the simulator's ground truth.

Runs a scenario in-process (no broker): the simulator's records go through the streams
pipeline (decode, order by event time, fold, close ticks) into a :class:`twin.TwinState`, and
:func:`twin.score_estimates` compares every (tick, scope, id) row with the simulator's truth
table. Prints the mean absolute error per fraction (percentage points) and MFU error (pp), overall
and per scope kind, plus facility MFU as the twin and the truth see it.

Run: ``.venv/bin/python bench/score_estimator.py [--scenario small] [--seconds 600]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from machine import machine_lines

from schemas.codec import decode
from schemas.core_events import to_core
from schemas.hotpath import decode_telemetry
from schemas.topics import TOPIC_EVENT_TYPES
from sim.engine import Simulator
from sim.scenario import load_scenario
from streams.pipeline import Pipeline, Record
from twin import TwinState, close_tick, fold_events, score_estimates
from twin.batches import Batch
from twin.results import TickResult
from twin.scoring import FRACTIONS


def run_fold(scenario: str, seconds: float) -> tuple[list[TickResult], dict[str, np.ndarray]]:
    """The simulator's records decoded at the edge and folded in log order by
    :func:`twin.fold_events` (the twin's own tick rule)."""
    sc = load_scenario(scenario)
    sim = Simulator(sc)
    state = TwinState(tick_ns=round(sc.telemetry.truth_tick_s * 1e9))
    results: list[TickResult] = []

    def on_interval(records: list[tuple[str, bytes, bytes]]) -> None:
        log: list[Batch] = []
        values: list[bytes] = []
        for topic, _key, value in records:
            if topic == "facility.gpu":
                values.append(value)
                continue
            if values:
                log.append(decode_telemetry(values).batch)
                values = []
            log.append([to_core(decode(value, TOPIC_EVENT_TYPES[topic]))])
        if values:
            log.append(decode_telemetry(values).batch)
        results.extend(fold_events(state, log))

    sim.run(seconds, on_interval)
    results.append(close_tick(state))
    return results, dict(sim.truth_table().columns)


def run(scenario: str, seconds: float) -> tuple[list[TickResult], dict[str, np.ndarray]]:
    """The same through the streams pipeline (its own event-time ordering and tick split)."""
    sc = load_scenario(scenario)
    sim = Simulator(sc)
    tick_ns = round(sc.telemetry.truth_tick_s * 1e9)
    pipeline = Pipeline(TwinState(tick_ns=tick_ns))
    offsets: dict[str, int] = {}
    results: list[TickResult] = []

    def on_interval(records: list[tuple[str, bytes, bytes]]) -> None:
        batch = []
        for topic, key, value in records:
            offset = offsets.get(topic, 0)
            offsets[topic] = offset + 1
            batch.append(Record(topic, 0, offset, key, value))
        dead = pipeline.ingest(batch)
        assert not dead, dead[:3]
        results.extend(pipeline.advance())

    sim.run(seconds, on_interval)
    results.extend(pipeline.flush())
    return results, dict(sim.truth_table().columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="small")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument(
        "--via",
        choices=("fold", "pipeline"),
        default="fold",
        help="fold the log with twin.fold_events, or through streams.pipeline.Pipeline",
    )
    parser.add_argument(
        "--warmup-ticks",
        type=int,
        default=1,
        help="leave out the first ticks (jobs that began before the log look not yet stepped)",
    )
    args = parser.parse_args()
    t = time.perf_counter()
    results, truth = (run_fold if args.via == "fold" else run)(args.scenario, args.seconds)
    took = time.perf_counter() - t
    scored = results[args.warmup_ticks :]
    full = score_estimates(results, truth)
    score = score_estimates(scored, truth)
    print("\n".join(machine_lines()))
    print(
        f"scenario {args.scenario} via {args.via}: {args.seconds:.0f} s of event time, "
        f"{len(results)} ticks ({args.warmup_ticks} warm-up left out), "
        f"{score.rows} matched (tick, scope, id) rows; {took:.1f} s wall"
    )
    print("| scope | rows | " + " | ".join(FRACTIONS) + " | MFU MAE | MFU bias |")
    print("|---|---:|" + "---:|" * (len(FRACTIONS) + 2))

    def line(name: str, e: dict[str, float], rows: int) -> str:
        fr = " | ".join(f"{e[f] * 100:.2f}" for f in FRACTIONS)
        return f"| {name} | {rows} | {fr} | {e['mfu_pp']:.2f} | {e['mfu_bias_pp']:+.2f} |"

    overall = {**score.fraction_mae, "mfu_pp": score.mfu_mae_pp, "mfu_bias_pp": score.mfu_bias_pp}
    print(line("all", overall, score.rows))
    every = {**full.fraction_mae, "mfu_pp": full.mfu_mae_pp, "mfu_bias_pp": full.mfu_bias_pp}
    print(line("all, warm-up included", every, full.rows))
    for scope, e in score.by_scope.items():
        print(line(scope, dict(e), int(e["rows"])))
    print("(mean absolute errors in percentage points)")
    sc = np.asarray(truth["scope"])
    twin_mfu, true_mfu = [], []
    for r in scored:
        k = np.flatnonzero((np.asarray(truth["tick_end_ns"]) == r.end_ns) & (sc == "facility"))
        if k.size:
            twin_mfu.append(r.kpi("facility", "facility", "mfu"))
            true_mfu.append(float(np.asarray(truth["mfu"])[k[0]]))
    print(
        f"facility MFU over the scored ticks: twin {np.mean(twin_mfu) * 100:.2f}%, "
        f"truth {np.mean(true_mfu) * 100:.2f}%"
    )


if __name__ == "__main__":
    main()
