"""Event-to-KPI latency at the real-time rate: p50 / p95 / p99 over closed ticks.

Target (DESIGN.md "Targets", issue 5): p99 <= 2 s. On a Kafka broker started for the benchmark
(free ports, a temporary folder; or ``TWIN_KAFKA_BOOTSTRAP``):

- one ``twin worker --fresh`` child process per ``--lateness`` value (``TWIN_LATENESS_S``; by
  default 1 s, the shipped setting, and 0 s), each its own run id, consumer group and DuckDB
  file, all reading the same topics; the benchmark waits until every group is Stable;
- this process simulates the scenario at ``--speed`` x real time (1 = real time) into the
  facility topics with kafka-python, recording the wall time (monotonic) right after each
  ``send()`` of a telemetry message, with the message's event time and partition;
- a thread of this process consumes ``twin.kpis`` and records when each (run, tick, scope)
  message arrived.

Latency of a tick = arrival of the last of its KPI messages (one per scope kind: the tick's whole
KPI set is visible) minus the send of the last telemetry message of the tick (the pipeline's
bucketing, :func:`twin.reducers.telemetry_tick_times`: a message belongs to the tick its
interval ``[ts_ns - interval_ns, ts_ns)`` starts in). It splits into the *event-time wait*
(until every telemetry partition has been sent a reading that ends at or after tick end +
lateness, which the watermark needs: a partition's clock is the end of the first reading of
its latest record, the only one with the default JSON telemetry, so with 1 Hz samples that is
about ``lateness`` after the tick's last message) and the
*processing* after that message was sent (Kafka, Faust, decode, fold, the tick's kernels,
DuckDB, publishing, the KPI consumer). The first
``--warmup`` ticks and the ticks closed by the end-of-input flush are left out.

Run: ``.venv/bin/python bench/bench_latency.py [--quick] [--append]``; ``--help`` for options.
The worker processes and the broker are stopped by their pids, also on failure or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from streambench import (
    append_results,
    bench_broker,
    child_process,
    code_revision,
    load_line,
    machine_info,
    sigterm_unwinds,
    utc_now,
)

from streams.settings import Settings

TARGET_P99_S = 2.0


@dataclass(slots=True)
class Sent:
    """Telemetry sends (parallel lists): the start of the interval the message stands for (its
    tick, as the pipeline buckets it), the interval's end (``ts_ns``: what advances the
    partition's clock), the partition and the monotonic send time."""

    start_ns: list[int] = field(default_factory=list)
    end_ns: list[int] = field(default_factory=list)
    partition: list[int] = field(default_factory=list)
    t: list[float] = field(default_factory=list)


class TimedSink:
    """A simulator sink producing with kafka-python that records each telemetry send."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaProducer  # noqa: PLC0415
        from kafka.partitioner.default import murmur2  # noqa: PLC0415

        from sim.producer import DEFAULT_PRODUCER_OPTIONS  # noqa: PLC0415
        from streams.topics import DEFAULT_PARTITIONS  # noqa: PLC0415

        self._producer = KafkaProducer(
            **settings.kafka_python_kwargs(), client_id="bench-latency",
            **DEFAULT_PRODUCER_OPTIONS,
        )
        self._murmur2 = murmur2
        self._n_gpu = DEFAULT_PARTITIONS["facility.gpu"]
        self.sent = Sent()
        self.errors: list[BaseException] = []

    def write(self, records: list[tuple[str, bytes, bytes]]) -> None:
        send = self._producer.send
        for topic, key, value in records:
            send(topic, key=key, value=value).add_errback(self.errors.append)
            if topic == "facility.gpu":
                now = time.monotonic()
                head = orjson.loads(value)
                self.sent.end_ns.append(int(head["ts_ns"]))
                self.sent.start_ns.append(int(head["ts_ns"]) - int(head["interval_ns"]))
                p = (self._murmur2(key) & 0x7FFFFFFF) % self._n_gpu if key else 0
                self.sent.partition.append(p)
                self.sent.t.append(now)

    def flush(self) -> None:
        self._producer.flush(timeout=60)
        if self.errors:
            raise RuntimeError(f"{len(self.errors)} sends failed: {self.errors[0]!r}")

    def close(self) -> None:
        self._producer.close()


class KpiWatcher(threading.Thread):
    """Consumes ``twin.kpis`` from its end; the arrival time of every (run, tick end, scope)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="kpi-watcher", daemon=True)
        from kafka import KafkaConsumer, TopicPartition  # noqa: PLC0415

        self._consumer = KafkaConsumer(
            **settings.kafka_python_kwargs(), enable_auto_commit=False, group_id=None,
            fetch_max_wait_ms=50, client_id="bench-latency-kpis",
        )
        parts = self._consumer.partitions_for_topic("twin.kpis") or set()
        tps = [TopicPartition("twin.kpis", p) for p in sorted(parts)]
        self._consumer.assign(tps)
        self._consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before anything is produced
            self._consumer.position(tp)
        self.arrivals: dict[tuple[str, int], dict[str, float]] = {}
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                got = self._consumer.poll(timeout_ms=100)
                now = time.monotonic()
                for recs in got.values():
                    for r in recs:
                        body = orjson.loads(r.value)
                        key = (str(body["run_id"]), int(body["tick_end_ns"]))
                        self.arrivals.setdefault(key, {}).setdefault(str(body["scope"]), now)
        except BaseException as exc:  # surfaced by the main thread
            self.error = exc
        finally:
            self._consumer.close()


@dataclass(slots=True)
class WorkerRun:
    lateness_s: float
    run_id: str
    group_id: str
    folder: Path


def _wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


@contextlib.contextmanager
def workers(
    settings: Settings, runs: list[WorkerRun], tick_s: float, idle_exit_s: float,
    delivery: str = "agent",
) -> Iterator[list[subprocess.Popen[str]]]:
    """``twin worker --fresh`` per run; yields once each has positioned its partitions and its
    consumer group is Stable. Killed by their pids when the block ends, if still running."""
    from kafka.admin import KafkaAdminClient  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        procs = []
        logs = []
        for run in runs:
            run.folder.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ)
            env.update(
                TWIN_KAFKA_BOOTSTRAP=settings.bootstrap_servers,
                TWIN_DATA_DIR=str(run.folder),
                TWIN_DUCKDB_PATH=str(run.folder / "twin.duckdb"),
                TWIN_RUN_ID=run.run_id,
                TWIN_GROUP_ID=run.group_id,
                TWIN_LATENESS_S=f"{run.lateness_s:g}",
                TWIN_TICK_S=f"{tick_s:g}",
                TWIN_DELIVERY=delivery,
            )
            log_path = run.folder / "worker.log"
            logf = stack.enter_context(log_path.open("w"))
            logs.append(log_path)
            procs.append(stack.enter_context(child_process(
                ["-m", "streams.cli", "worker", "--fresh", "--idle-exit", f"{idle_exit_s:g}",
                 "--log-level", "error"],
                env=env, stdout=logf, stderr=subprocess.STDOUT,
            )))
        for proc, log_path in zip(procs, logs, strict=True):
            def positioned(proc: subprocess.Popen[str] = proc, log_path: Path = log_path) -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited early:\n{log_path.read_text()[-3000:]}")
                return "partitions positioned" in log_path.read_text()

            _wait_for(positioned, 120, "the workers to start")
        admin = KafkaAdminClient(**settings.kafka_python_kwargs(), client_id="bench-latency")
        try:
            def stable() -> bool:
                groups = admin.describe_groups([r.group_id for r in runs])
                return all(g["group_state"] == "Stable" and g["members"] for g in groups.values())

            _wait_for(stable, 120, "the workers' consumer groups to be Stable")
        finally:
            admin.close()
        yield procs


@dataclass(slots=True)
class TickLatency:
    end_ns: int
    latency_s: float
    wait_s: float
    processing_s: float
    first_scope_s: float


def tick_latencies(
    sent: Sent, arrivals: dict[str, float], *, end_ns: int, tick_ns: int, lateness_ns: int
) -> TickLatency | None:
    """The latency of one tick; None when no reading ending at or after end + lateness was sent
    on some partition (the tick was closed by the end-of-input flush)."""
    start = np.asarray(sent.start_ns, np.int64)
    ts = np.asarray(sent.end_ns, np.int64)
    part = np.asarray(sent.partition, np.int64)
    t = np.asarray(sent.t, np.float64)
    inside = (start >= end_ns - tick_ns) & (start < end_ns)
    if not inside.any():
        return None
    last_send = float(t[inside].max())
    closing = []
    for p in np.unique(part).tolist():
        after = (part == p) & (ts >= end_ns + lateness_ns)
        if not after.any():
            return None
        closing.append(float(t[after].min()))
    close_send = max(closing)
    kpi_all = max(arrivals.values())
    return TickLatency(
        end_ns=end_ns,
        latency_s=kpi_all - last_send,
        wait_s=close_send - last_send,
        processing_s=kpi_all - close_send,
        first_scope_s=min(arrivals.values()) - last_send,
    )


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    v = float(np.percentile(np.asarray(xs), q))
    return 0.0 if abs(v) < 0.005 else v  # no "-0.00 s" in the table


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="See the module docstring (bench/bench_latency.py) for the definitions.",
    )
    parser.add_argument("--scenario", default="small", help="scenario (default: small)")
    parser.add_argument("--ticks", type=int, default=30,
                        help="ticks to measure per worker after the warm-up (default 30)")
    parser.add_argument("--warmup", type=int, default=1, help="ticks left out first (default 1)")
    parser.add_argument("--tick", type=float, default=10.0, help="tick length, s (default 10)")
    parser.add_argument("--lateness", default="1,0",
                        help="comma-separated TWIN_LATENESS_S values, one worker each "
                        "(default 1,0; 1 s is the shipped setting)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="event seconds per wall second (default 1 = real time)")
    parser.add_argument("--quick", action="store_true", help="short run: 6 ticks")
    parser.add_argument("--idle-exit", type=float, default=4.0,
                        help="the workers' --idle-exit, s (default 4)")
    parser.add_argument("--delivery", choices=("agent", "batch"), default="agent",
                        help="the workers' TWIN_DELIVERY (default agent)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the temporary data")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    if args.quick:
        args.ticks = min(args.ticks, 6)
    lateness = [float(x) for x in args.lateness.split(",") if x.strip()]
    info = machine_info()
    print("\n".join(info), flush=True)

    from sim.run import simulate  # noqa: PLC0415
    from sim.scenario import load_scenario  # noqa: PLC0415
    from streams.topics import ensure_topics  # noqa: PLC0415

    scenario = load_scenario(args.scenario)
    # enough event time for warm-up + measured ticks, the tick the run starts in, and the
    # lateness + one sample of the last measured tick
    duration = (args.warmup + args.ticks + 2) * args.tick + max(lateness) + 2
    tag = f"{os.getpid()}-{int(time.time())}"
    tick_ns = round(args.tick * 1e9)
    load_start = load_line()
    revision = code_revision()
    with sigterm_unwinds(), tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        with bench_broker(folder) as (settings, own):
            ensure_topics(settings, bootstrap=settings.bootstrap_servers)
            where = ("a local single-node Kafka started for the run (same machine)" if own
                     else f"the configured cluster {settings.bootstrap_servers}")
            runs = [WorkerRun(lat, f"latency-{k}-{tag}", f"bench-latency-{k}-{tag}",
                              folder / f"worker{k}") for k, lat in enumerate(lateness)]
            with workers(settings, runs, args.tick, args.idle_exit, args.delivery) as procs:
                watcher = KpiWatcher(settings)
                watcher.start()
                sink = TimedSink(settings)
                print(f"producing {duration:g} s of {args.scenario} at {args.speed:g}x real "
                      f"time; {len(runs)} workers (lateness {args.lateness} s)", flush=True)
                try:
                    result = simulate(scenario, duration, sink=sink, speed=args.speed)
                finally:
                    sink.close()
                load_mid = load_line()
                for proc in procs:
                    proc.wait(timeout=120 + args.idle_exit * 4)
                time.sleep(1.0)
                watcher.stop.set()
                watcher.join(timeout=10)
                if watcher.error is not None:
                    raise RuntimeError(f"KPI watcher failed: {watcher.error!r}")
                codes = [p.returncode for p in procs]
                if any(codes):
                    raise RuntimeError(f"worker exit codes {codes}")

    lines = [
        f"### {utc_now()}: event-to-KPI latency at {args.speed:g}x real time "
        f"(`bench/bench_latency.py{' --quick' if args.quick else ''}`)",
        "",
        "Machine: " + "; ".join(info[:-1]) + f"; load average {load_start} at the start, "
        f"{load_mid} at the end of the produce. Code at {revision}. Broker: {where}. "
        f"{args.scenario} "
        f"({result.stats.gpu_samples // max(1, round(result.stats.sim_seconds)):,} GPUs), "
        f"{duration:g} s of event time produced at {args.speed:g}x by the simulator "
        f"(kafka-python, linger 20 ms); ticks of {args.tick:g} s; {len(runs)} `twin worker` "
        f"processes at once, one per lateness, {args.delivery} delivery (TWIN_DELIVERY).",
        "",
        "| TWIN_LATENESS_S | ticks | p50 | p95 | p99 | max | meets p99 <= 2 s | event-time wait "
        "p50 | processing p50 / p99 / max | first KPI message p50 |",
        "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for run in runs:
        ends = sorted(e for (rid, e) in watcher.arrivals if rid == run.run_id)
        measured: list[TickLatency] = []
        for end in ends[args.warmup:]:
            lat = tick_latencies(sink.sent, watcher.arrivals[(run.run_id, end)], end_ns=end,
                                 tick_ns=tick_ns, lateness_ns=round(run.lateness_s * 1e9))
            if lat is not None:
                measured.append(lat)
        measured = measured[: args.ticks]
        tot = [m.latency_s for m in measured]
        proc_s = [m.processing_s for m in measured]
        print(f"lateness {run.lateness_s:g} s: {len(ends)} ticks published, {len(measured)} "
              f"measured; " + ", ".join(f"{m.latency_s:.2f}" for m in measured), flush=True)
        meets = "yes" if _pct(tot, 99) <= TARGET_P99_S else "no"
        lines.append(
            f"| {run.lateness_s:g} s | {len(measured)} | {_pct(tot, 50):.2f} s | "
            f"{_pct(tot, 95):.2f} s | {_pct(tot, 99):.2f} s | {max(tot, default=float('nan')):.2f}"
            f" s | {meets} | {_pct([m.wait_s for m in measured], 50):.2f} s | "
            f"{_pct(proc_s, 50):.2f} / {_pct(proc_s, 99):.2f} / "
            f"{max(proc_s, default=float('nan')):.2f} s | "
            f"{_pct([m.first_scope_s for m in measured], 50):.2f} s |"
        )
    lines += [
        "",
        f"Percentiles over {args.ticks} ticks at most per worker (numpy's linear interpolation: "
        "with ~30 ticks p99 is close to the maximum). The event-time wait is set by the "
        "lateness and the pipeline's clock rule, not by the machine.",
        "",
    ]
    entry = "\n".join(lines)
    print()
    print(entry)
    if args.append:
        append_results(entry)
        print(f"appended to {Path(__file__).resolve().parent / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
