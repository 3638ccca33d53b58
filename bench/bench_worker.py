"""One stream worker end to end: Kafka -> validated -> folded -> KPIs -> DuckDB, GPU samples/s.

Target (DESIGN.md "Targets", issue 5): >= 2.2 million GPU samples/s in ONE worker process on the
full 220,000-GPU facility (10x its real-time rate). Each case, on a Kafka broker started for the
benchmark (free ports, a temporary folder; or ``TWIN_KAFKA_BOOTSTRAP``):

1. a scenario is simulated into memory and produced to the facility topics (kafka-python, timed);
2. ``worker``: a child process runs the code of ``twin worker`` (TwinWorker, make_app,
   run_faust) on a fresh run id and consumer group, positioned at the topics' offsets from
   before the produce (what ``twin run`` does), so it reads exactly this backlog, and stops
   once it has read every partition to its end (``TwinWorker.stop_at``, as ``twin run``). One
   such worker per delivery in ``--delivery`` (``agent``: the Faust agent's stream; ``batch``:
   whole fetches, streams/delivery.py), on the same backlog. The rate is GPU samples over the
   wall time from the first batch handed to the worker to the last batch done (its ticks'
   DuckDB writes queued and KPIs sent), plus the end-of-input tail (flush of the open tick,
   final snapshot, every queued write landed, DuckDB closed); the stop timer's wait and Faust's
   start-up are left out (start-up is reported apart). The *sustained* rate counts from the
   moment the first tick closed (the log's first records install the facility's 3,406 racks,
   a one-off cost of about a second) to the same end. The worker's time is split by probes on
   its methods: decode + validate (``Pipeline.ingest``), fold + tick close
   (``Pipeline.advance``), building rows and snapshots, waiting for room in the DuckDB queue,
   the tail, publishing, and the rest (Faust, aiokafka, the event loop);
3. transport floors on the same topics: an aiokafka consumer that only counts (``getmany``), and
   the app of ``make_app`` with a no-op worker (Faust's ``take_events`` path, nothing folded);
4. ``offline``, in this process on the same records: :class:`Pipeline` fed directly (no Kafka,
   Faust or DuckDB), and ``TwinWorker.process`` + the DuckDB writer + KPI encoding (the worker
   minus the transport). Its state checksum must equal the live worker's.

Cases: the small scenario and colossus1-mixed with JSON telemetry (one reading a message), and
colossus1-mixed again with binary telemetry (``schemas.binary``, ``--binary-readings`` K
readings of a rack a message), same seed, so the same readings and the same folded state
(``--binary-only``: that case alone).

The naive baseline (same run, the small scenario): one Kafka message per GPU sample (JSON), a
Faust agent taking them one at a time (``stream.items()``) and keeping per-GPU state in a Faust
Table (memory store, changelog topic). It does less than the twin (no ticks, KPIs, DuckDB).

Run: ``.venv/bin/python bench/bench_worker.py [--quick] [--append]``; ``--help`` for the sizes.
Every child process and the broker are stopped by their pids, also on failure or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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

from streams.settings import Settings, load_settings

RawRecord = tuple[str, bytes | None, bytes]
Offsets = dict[tuple[str, int], int]
TARGET = 2.2e6
TAKE_MAX = 2000  # WorkerConfig.take_max: the live batch size, used for the offline batches too
NAIVE_PARTITIONS = 8



# ------------------------------------------------------------------------------ helpers
def _spec_offsets(items: list[list[Any]]) -> Offsets:
    return {(str(t), int(p)): int(o) for t, p, o in items}


def _offsets_spec(offsets: Offsets) -> list[list[Any]]:
    return [[t, p, o] for (t, p), o in sorted(offsets.items())]


def _child_settings(spec: dict[str, Any], **extra: Any) -> Settings:
    return load_settings(
        kafka_bootstrap=spec["bootstrap"], data_dir=Path(spec["data_dir"]), **extra
    )


def _write_result(spec: dict[str, Any], result: dict[str, Any]) -> None:
    Path(spec["out"]).write_bytes(orjson.dumps(result))


def _stop_self() -> None:
    """Stop this Faust worker like its idle exit does (Faust handles SIGTERM)."""
    os.kill(os.getpid(), signal.SIGTERM)


# ---------------------------------------------------------------------------- children
@dataclass(slots=True)
class _Probe:
    first: float | None = None
    last_end: float = 0.0
    cpu_first: float = 0.0
    cpu_last: float = 0.0
    batches: int = 0
    records: int = 0
    on_records_s: float = 0.0
    max_batch_s: float = 0.0
    process_s: float = 0.0
    ingest_s: float = 0.0
    advance_s: float = 0.0
    db_s: float = 0.0
    publish_s: float = 0.0
    flush_s: float = 0.0
    close_s: float = 0.0
    first_tick: float | None = None  # when the first tick closed
    samples_first_tick: int = 0  # samples decoded by then


def _timed_sync(fn: Callable[..., Any], probe: _Probe, name: str) -> Callable[..., Any]:
    def wrapper(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            setattr(probe, name, getattr(probe, name) + time.perf_counter() - t0)

    return wrapper


def _timed_async(fn: Callable[..., Any], probe: _Probe, name: str) -> Callable[..., Any]:
    async def wrapper(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*a, **kw)
        finally:
            setattr(probe, name, getattr(probe, name) + time.perf_counter() - t0)

    return wrapper


def child_worker(spec: dict[str, Any]) -> None:
    """The code of ``twin worker`` with probes; positioned at ``spec['start']``."""
    from streams.app import make_app, run_faust  # noqa: PLC0415 - child only
    from streams.topics import ensure_topics  # noqa: PLC0415
    from streams.worker import TwinWorker, WorkerConfig  # noqa: PLC0415
    from twin.checksum import state_checksum  # noqa: PLC0415

    t_imported = time.monotonic()
    settings = _child_settings(spec, run_id=spec["run_id"], group_id=spec["group_id"])
    config = WorkerConfig(
        run_id=settings.run_id, tick_s=spec["tick_s"], lateness_s=spec["lateness_s"],
        snapshot_every=settings.snapshot_every, group_id=settings.group_id,
        idle_exit_s=spec["idle_exit_s"], scenario=spec["scenario"],
        delivery=spec["delivery"],
    )
    bootstrap = settings.bootstrap_servers
    ensure_topics(settings, bootstrap=bootstrap)
    worker = TwinWorker(config, settings.duckdb_path)
    worker.start(fresh_from=_spec_offsets(spec["start"]), end_offsets=_spec_offsets(spec["end"]))
    # the backlog is all there is: stop once every partition is read to its end (what twin run
    # does when its simulator is done), never on a pause of the consumer
    worker.stop_at = _spec_offsets(spec["end"])
    probe = _Probe()
    pipe = worker.pipeline
    setattr(pipe, "ingest", _timed_sync(pipe.ingest, probe, "ingest_s"))  # noqa: B010
    setattr(pipe, "advance", _timed_sync(pipe.advance, probe, "advance_s"))  # noqa: B010
    setattr(worker, "take", _timed_sync(worker.take, probe, "process_s"))  # noqa: B010
    setattr(worker, "settle", _timed_sync(worker.settle, probe, "process_s"))  # noqa: B010
    setattr(worker, "flush", _timed_sync(worker.flush, probe, "flush_s"))  # noqa: B010
    writer = worker.writer
    setattr(writer, "aqueue", _timed_async(writer.aqueue, probe, "db_s"))  # noqa: B010
    inner = worker.on_records

    async def on_records(records: Any, *more: Any) -> None:
        t0 = time.monotonic()
        if probe.first is None:
            probe.first = t0
            probe.cpu_first = time.process_time()
        await inner(records, *more)
        t1 = time.monotonic()
        if probe.first_tick is None and worker.stats.ticks:
            # steady state from here: the topology is installed (the log's first events)
            probe.first_tick = t1
            probe.samples_first_tick = worker.pipeline.stats.samples
        probe.on_records_s += t1 - t0
        probe.max_batch_s = max(probe.max_batch_s, t1 - t0)
        probe.last_end = t1
        probe.cpu_last = time.process_time()
        probe.batches += 1
        probe.records += len(records)

    setattr(worker, "on_records", on_records)  # noqa: B010
    app = make_app(settings, bootstrap, worker)
    assert worker.publish is not None
    worker.publish = _timed_async(worker.publish, probe, "publish_s")
    t_run = time.monotonic()
    try:
        run_faust(app, "error")
    finally:
        t0 = time.perf_counter()
        worker.close()
        probe.close_s = time.perf_counter() - t0
    _write_result(spec, {
        "t_imported": t_imported, "t_run": t_run, "probe": {
            k: getattr(probe, k) for k in _Probe.__dataclass_fields__
        },
        "samples": worker.pipeline.stats.samples, "records": worker.stats.records,
        "ticks": worker.stats.ticks, "snapshots": worker.stats.snapshots,
        "dead_letters": worker.stats.dead_letters, "checksum": state_checksum(worker.state),
    })


def child_faust_drain(spec: dict[str, Any]) -> None:
    """``make_app``'s Faust app and consumer settings with a worker that only counts."""
    from streams.app import make_app, run_faust  # noqa: PLC0415 - child only
    from streams.worker import TwinWorker, WorkerConfig  # noqa: PLC0415

    settings = _child_settings(spec, run_id=spec["run_id"], group_id=spec["group_id"])
    config = WorkerConfig(run_id=settings.run_id, group_id=settings.group_id)
    worker = TwinWorker(config, settings.duckdb_path)
    start = _spec_offsets(spec["start"])
    worker.start(fresh_from=start)
    expected = int(spec["expected"])
    seen = {"n": 0, "first": 0.0, "last": 0.0, "batches": 0}

    async def count(records: Any, *_: Any) -> None:
        now = time.monotonic()
        # records a consumer still delivers from before the seek are not this backlog's
        n = sum(1 for r in records if r.offset >= start.get((r.topic, r.partition), 0))
        if n == 0:
            return
        if seen["n"] == 0:
            seen["first"] = now
        seen["n"] += n
        seen["batches"] += 1
        seen["last"] = now
        if seen["n"] >= expected:
            _stop_self()

    setattr(worker, "on_records", count)  # noqa: B010
    app = make_app(settings, settings.bootstrap_servers, worker)
    try:
        run_faust(app, "error")
    finally:
        worker.close(final_snapshot=False)
    _write_result(spec, seen)


def child_aiokafka_drain(spec: dict[str, Any]) -> None:
    """A bare aiokafka consumer (no group) reading the same partitions: the transport floor."""
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415 - child only

    settings = _child_settings(spec)
    start = _spec_offsets(spec["start"])
    end = _spec_offsets(spec["end"])
    expected = sum(end[tp] - start[tp] for tp in end)

    async def drain() -> dict[str, float]:
        consumer = AIOKafkaConsumer(
            **settings.aiokafka_kwargs(spec["bootstrap"]),
            enable_auto_commit=False,
            max_partition_fetch_bytes=int(spec["fetch_bytes"]),
            fetch_max_wait_ms=1500,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for (t, p) in start]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, start[(tp.topic, tp.partition)])
            n = 0
            nbytes = 0
            first = last = 0.0
            while n < expected:
                got = await consumer.getmany(timeout_ms=1000, max_records=TAKE_MAX)
                now = time.monotonic()
                for recs in got.values():
                    if n == 0 and recs:
                        first = now
                    n += len(recs)
                    nbytes += sum(len(r.value or b"") for r in recs)
                last = now
            return {"n": n, "bytes": nbytes, "first": first, "last": last}
        finally:
            await consumer.stop()

    _write_result(spec, asyncio.run(drain()))


def child_naive(spec: dict[str, Any]) -> None:
    """The naive baseline: one message per GPU sample, per-GPU state in a Faust Table."""
    import faust  # noqa: PLC0415 - child only

    from streams.app import _faust_credentials, _shorten_fetch_wait, run_faust  # noqa: PLC0415

    settings = _child_settings(spec)
    app = faust.App(
        spec["app_id"],
        broker=f"kafka://{spec['bootstrap']}",
        broker_credentials=_faust_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        store="memory://",
        web_enabled=False,
        topic_disable_leader=True,
        topic_partitions=NAIVE_PARTITIONS,
        consumer_auto_offset_reset="earliest",
        datadir=str(Path(spec["data_dir"]) / "faust-naive"),
    )
    topic = app.topic(spec["topic"], key_type=bytes, value_type=bytes,
                      partitions=NAIVE_PARTITIONS)
    table = app.Table("gpu_state", default=None, partitions=NAIVE_PARTITIONS, key_type=bytes)
    expected = int(spec["expected"])
    seen = {"n": 0, "bad": 0, "dup": 0, "first": 0.0, "last": 0.0}

    async def fold(stream: Any) -> None:
        async for key, value in stream.items():
            now = time.monotonic()
            if seen["n"] == 0:
                seen["first"] = now
            seen["n"] += 1
            d = orjson.loads(value)
            power, util = d["power_w"], d["gpu_util_pct"]
            sm, tensor = d["sm_active"], d["tensor_active"]
            if not (0 <= power <= 2000 and 0 <= util <= 100 and 0 <= sm <= 1
                    and 0 <= tensor <= 1 and d["interval_ns"] > 0):
                seen["bad"] += 1
            else:
                st = table.get(key)
                if st is None:
                    st = [0.0, 0.0, 0.0, 0, 0]
                if d["ts_ns"] <= st[4]:
                    seen["dup"] += 1
                else:
                    dt = d["interval_ns"] / 1e9
                    table[key] = [st[0] + power * dt, st[1] + util / 100 * dt,
                                  st[2] + tensor * dt, st[3] + 1, d["ts_ns"]]
            if seen["n"] >= expected:
                seen["last"] = time.monotonic()
                _stop_self()

    app.agent(topic, name="naive")(fold)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _same_fetch_wait(sender: Any, *_: Any, **__: Any) -> None:
        _shorten_fetch_wait(app)  # the transport tuning of make_app, for a fair comparison

    run_faust(app, "error")
    _write_result(spec, seen)


CHILDREN: dict[str, Callable[[dict[str, Any]], None]] = {
    "worker": child_worker,
    "faust-drain": child_faust_drain,
    "aiokafka-drain": child_aiokafka_drain,
    "naive": child_naive,
}


def run_child(
    mode: str, spec: dict[str, Any], folder: Path, timeout_s: float
) -> tuple[dict[str, Any], float]:
    """Run a child mode to its end; its result and the monotonic time it was started."""
    name = f"{mode}-{spec.get('run_id', spec.get('app_id', 'x'))}"
    spec = {**spec, "mode": mode, "out": str(folder / f"{name}.json")}
    spec_path = folder / f"{name}.spec.json"
    spec_path.write_bytes(orjson.dumps(spec))
    log_path = folder / f"{name}.log"
    t_spawn = time.monotonic()
    with log_path.open("w") as logf, child_process(
        [__file__, "--child", str(spec_path)], stdout=logf, stderr=subprocess.STDOUT
    ) as proc:
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
    out = Path(spec["out"])
    if code != 0 or not out.exists():
        tail = log_path.read_text()[-3000:]
        why = "timed out" if code is None else f"exited with {code}"
        raise RuntimeError(f"{mode} child {why} after {timeout_s:.0f} s at most:\n{tail}")
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    return result, t_spawn


# ------------------------------------------------------------------------------ parent
def simulate_records(scenario: str, seconds: float, readings: int = 0) -> list[RawRecord]:
    """The scenario's records; ``readings`` > 0: binary telemetry, that many a message."""
    from sim.run import MemorySink, simulate  # noqa: PLC0415
    from sim.scenario import load_scenario  # noqa: PLC0415

    sink = MemorySink()
    tel = {"format": "binary", "readings_per_message": readings} if readings else {}
    simulate(load_scenario(scenario, {"telemetry": tel}), seconds, sink=sink)
    return list(sink.records)


def produce(settings: Settings, records: list[RawRecord]) -> float:
    """Send ``records`` (default partitioner: keyed by rack / source); the wall seconds."""
    from kafka import KafkaProducer  # noqa: PLC0415

    producer = KafkaProducer(
        **settings.kafka_python_kwargs(), linger_ms=20, batch_size=1 << 20,
        max_request_size=16 << 20, acks=1, client_id="bench-worker",
    )
    try:
        t0 = time.perf_counter()
        send = producer.send
        for topic, key, value in records:
            send(topic, key=key, value=value)
        producer.flush(timeout=600)
        return time.perf_counter() - t0
    finally:
        producer.close()


def as_pipeline_records(records: list[RawRecord], start: Offsets) -> list[Any]:
    """The records as the live worker sees them: partition by the producer's default
    partitioner (murmur2 of the key), offsets counted from ``start``."""
    from kafka.partitioner.default import murmur2  # noqa: PLC0415

    from streams.pipeline import Record  # noqa: PLC0415
    from streams.topics import DEFAULT_PARTITIONS  # noqa: PLC0415

    nxt = dict(start)
    out = []
    for topic, key, value in records:
        p = (murmur2(key) & 0x7FFFFFFF) % DEFAULT_PARTITIONS[topic] if key else 0
        o = nxt.get((topic, p), 0)
        nxt[(topic, p)] = o + 1
        out.append(Record(topic, p, o, key, value))
    return out


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def offline_pipeline(recs: list[Any], tick_s: float, lateness_s: float) -> dict[str, Any]:
    from streams.pipeline import Pipeline  # noqa: PLC0415
    from twin.checksum import state_checksum  # noqa: PLC0415
    from twin.state import TwinState  # noqa: PLC0415

    gc.collect()
    pipe = Pipeline(TwinState(round(tick_s * 1e9)), lateness_ns=round(lateness_s * 1e9))
    t0 = time.perf_counter()
    ingest_s = 0.0
    for chunk in _chunks(recs, TAKE_MAX):
        a = time.perf_counter()
        pipe.ingest(chunk)
        ingest_s += time.perf_counter() - a
        pipe.advance()
    pipe.flush()
    wall = time.perf_counter() - t0
    return {"wall": wall, "ingest_s": ingest_s, "samples": pipe.stats.samples,
            "ticks": pipe.stats.ticks, "checksum": state_checksum(pipe.state)}


def offline_worker(
    recs: list[Any], start: Offsets, folder: Path, tick_s: float, lateness_s: float
) -> dict[str, Any]:
    """TwinWorker.process + DuckDB (each batch's operations queued, as ``on_records`` queues
    them; all landed by the end) + the KPI messages encoded: the live worker minus Kafka and
    Faust."""
    from streams.worker import TwinWorker, WorkerConfig, kpi_messages  # noqa: PLC0415

    gc.collect()
    config = WorkerConfig(run_id="offline", tick_s=tick_s, lateness_s=lateness_s)
    worker = TwinWorker(config, folder / "offline.duckdb")
    worker.start(fresh_from=dict(start))
    t0 = time.perf_counter()
    for chunk in _chunks(recs, TAKE_MAX):
        ops, _dead, ticks = worker.process(chunk)
        for op in ops:
            worker.writer.submit(op)
        for tick in ticks:
            kpi_messages(config.run_id, tick)
    worker.flush()
    worker.close()
    wall = time.perf_counter() - t0
    return {"wall": wall, "samples": worker.pipeline.stats.samples, "ticks": worker.stats.ticks}


@dataclass(slots=True)
class Case:
    scenario: str
    seconds: float
    readings: int = 0  # binary telemetry with this many readings a message; 0: JSON
    delivery: str = "agent"  # WorkerConfig.delivery of the live worker
    gpus: int = 0
    records: int = 0
    mbytes: float = 0.0
    produce_s: float = 0.0
    live: dict[str, Any] | None = None
    live_spawn: float = 0.0
    faust_drain: dict[str, Any] | None = None
    aiokafka_drain: dict[str, Any] | None = None
    aiokafka_drain_big: dict[str, Any] | None = None
    offline: dict[str, Any] | None = None
    offline_worker: dict[str, Any] | None = None
    load_start: str = ""
    load_end: str = ""

    # derived ----------------------------------------------------------------------------
    @property
    def label(self) -> str:
        fmt = "JSON" if not self.readings else f"binary, {self.readings} readings/message"
        return f"{self.scenario} ({fmt}, {self.delivery} delivery)"

    @property
    def live_window(self) -> float:
        assert self.live is not None
        p = self.live["probe"]
        return float(p["last_end"] - p["first"])

    @property
    def live_tail(self) -> float:
        assert self.live is not None
        p = self.live["probe"]
        return float(p["flush_s"] + p["close_s"])

    @property
    def live_rate(self) -> float:
        assert self.live is not None
        return float(self.live["samples"]) / (self.live_window + self.live_tail)

    @property
    def steady_rate(self) -> float:
        """GPU samples/s after the first tick closed (the log's topology installed) to the
        end, the tail included: the sustained rate."""
        assert self.live is not None
        p = self.live["probe"]
        if p["first_tick"] is None:
            return self.live_rate
        wall = p["last_end"] - p["first_tick"] + self.live_tail
        return float(self.live["samples"] - p["samples_first_tick"]) / wall

    @property
    def offline_rate(self) -> float:
        assert self.offline is not None
        return float(self.offline["samples"]) / float(self.offline["wall"])

    @property
    def offline_worker_rate(self) -> float:
        assert self.offline_worker is not None
        return float(self.offline_worker["samples"]) / float(self.offline_worker["wall"])


def run_case(
    settings: Settings, scenario: str, seconds: float, folder: Path, *,
    args: argparse.Namespace, tag: str, readings: int = 0,
) -> list[Case]:
    """One backlog, produced once, read by one live worker per delivery in ``args.delivery``
    (one :class:`Case` each; the drains and offline figures are shared)."""
    from streams.app import end_offsets  # noqa: PLC0415

    case = Case(scenario, seconds, readings, load_start=load_line())
    bootstrap = settings.bootstrap_servers
    print(f"\n== {case.label}: simulating {seconds:g} s into memory", flush=True)
    records = simulate_records(scenario, seconds, readings)
    case.records = len(records)
    case.mbytes = sum(len(v) for _, _, v in records) / 1e6
    start = end_offsets(settings, bootstrap)
    case.produce_s = produce(settings, records)
    end = end_offsets(settings, bootstrap)
    landed = sum(end[tp] - start.get(tp, 0) for tp in end)
    if landed != len(records):
        raise RuntimeError(f"{landed} records landed, {len(records)} produced (shared topics?)")
    print(f"produced {len(records):,} records ({case.mbytes:,.0f} MB) in {case.produce_s:.1f} s",
          flush=True)
    base = {"bootstrap": bootstrap, "data_dir": str(folder), "start": _offsets_spec(start),
            "end": _offsets_spec(end), "scenario": scenario}
    run = f"bench-{tag}-{scenario}" + (f"-bin{readings}" if readings else "")
    lives = []
    for how in args.delivery:
        live, spawn = run_child("worker", {
            **base, "run_id": f"{run}-{how}", "group_id": f"{run}-{how}-worker",
            "tick_s": args.tick, "lateness_s": args.lateness, "idle_exit_s": args.idle_exit,
            "delivery": how,
        }, folder, args.timeout)
        lives.append(replace(case, delivery=how, live=live, live_spawn=spawn))
        print(f"worker ({how} delivery): {live['samples']:,} samples, "
              f"{lives[-1].live_rate / 1e6:.3f} M samples/s overall, "
              f"{lives[-1].steady_rate / 1e6:.3f} M/s after the first tick", flush=True)
    case.aiokafka_drain, _ = run_child("aiokafka-drain", {
        **base, "run_id": f"{run}-ak", "fetch_bytes": 1 << 20}, folder, args.timeout)
    case.aiokafka_drain_big, _ = run_child("aiokafka-drain", {
        **base, "run_id": f"{run}-ak8", "fetch_bytes": 8 << 20}, folder, args.timeout)
    case.faust_drain, _ = run_child("faust-drain", {
        **base, "run_id": f"{run}-fd", "group_id": f"{run}-faust-drain",
        "expected": len(records)}, folder, args.timeout)
    print("drains done; offline paths", flush=True)
    recs = as_pipeline_records(records, start)
    del records
    case.offline = offline_pipeline(recs, args.tick, args.lateness)
    case.offline_worker = offline_worker(recs, start, folder, args.tick, args.lateness)
    from sim.scenario import load_scenario  # noqa: PLC0415

    sc = load_scenario(scenario)
    gpus = sum(h.gpus for campus in sc.campus for h in campus.hall)
    return [
        replace(c, gpus=gpus, load_end=load_line(), aiokafka_drain=case.aiokafka_drain,
                aiokafka_drain_big=case.aiokafka_drain_big, faust_drain=case.faust_drain,
                offline=case.offline, offline_worker=case.offline_worker)
        for c in lives
    ]


def naive_messages(n_samples: int) -> list[tuple[bytes, bytes]]:
    """Per-GPU JSON messages from the small scenario's rack telemetry (the first ``n``)."""
    seconds = max(2, -(-n_samples // 3360) + 1)
    out: list[tuple[bytes, bytes]] = []
    cols = ("power_w", "temp_c", "memory_temp_c", "sm_clock_mhz", "gpu_util_pct", "sm_active",
            "tensor_active", "dram_active", "nvlink_bytes", "xid")
    for topic, _key, value in simulate_records("small", seconds):
        if topic != "facility.gpu":
            continue
        d = orjson.loads(value)
        jobs = d["jobs"]
        for i, uuid in enumerate(d["gpu_uuid"]):
            msg = {"event_type": "gpu_sample", "ts_ns": d["ts_ns"], "rack_id": d["rack_id"],
                   "gpu_model": d["gpu_model"], "interval_ns": d["interval_ns"],
                   "gpu_index": d["gpu_index"][i], "gpu_uuid": uuid,
                   **{c: d[c][i] for c in cols},
                   "job_id": jobs[d["job_slot"][i]] if d["job_slot"][i] >= 0 else None}
            out.append((uuid.encode(), orjson.dumps(msg)))
            if len(out) >= n_samples:
                return out
    return out


def run_naive(
    settings: Settings, n_samples: int, folder: Path, args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    from kafka import KafkaProducer  # noqa: PLC0415
    from kafka.admin import KafkaAdminClient, NewTopic  # noqa: PLC0415

    print(f"\n== naive baseline: {n_samples:,} per-GPU messages", flush=True)
    msgs = naive_messages(n_samples)
    topic = f"bench.naive.{tag}"
    app_id = f"bench-naive-{tag}"
    admin = KafkaAdminClient(**settings.kafka_python_kwargs(), client_id="bench-naive")
    try:
        admin.create_topics([NewTopic(topic, NAIVE_PARTITIONS, 1)])
        producer = KafkaProducer(**settings.kafka_python_kwargs(), linger_ms=20,
                                 batch_size=1 << 20, acks=1, client_id="bench-naive")
        try:
            t0 = time.perf_counter()
            for key, value in msgs:
                producer.send(topic, key=key, value=value)
            producer.flush(timeout=600)
            produce_s = time.perf_counter() - t0
        finally:
            producer.close()
        print(f"produced in {produce_s:.1f} s", flush=True)
        res, _ = run_child("naive", {
            "bootstrap": settings.bootstrap_servers, "data_dir": str(folder), "topic": topic,
            "app_id": app_id, "expected": len(msgs)}, folder, args.timeout)
    finally:
        # on a shared cluster, leave nothing behind (on our own broker this is moot)
        try:
            admin.delete_topics([topic, f"{app_id}-gpu_state-changelog"])
        except Exception as exc:  # best effort
            print(f"(could not delete the naive topics: {exc!r})")
        admin.close()
    res["produce_s"] = produce_s
    res["bytes"] = sum(len(v) for _, v in msgs)
    res["rate"] = res["n"] / (res["last"] - res["first"])
    return res


# ------------------------------------------------------------------------------ report
def _m(x: float) -> str:
    return f"{x / 1e6:.3f} M"


def report(cases: list[Case], naive: dict[str, Any] | None, info: list[str], where: str,
           args: argparse.Namespace) -> str:
    lines = [
        f"### {utc_now()}: one worker end to end (`bench/bench_worker.py"
        f"{' --quick' if args.quick else ''}`)",
        "",
        "Machine: " + "; ".join(info) + f". Code at {args.revision}. Broker: {where}. "
        f"Worker settings: tick "
        f"{args.tick:g} s, lateness {args.lateness:g} s, take_max {TAKE_MAX}, snapshots every 6 "
        "ticks with per-GPU rows.",
    ]
    if cases:
        lines += ["", *_case_lines(cases)]
    if naive is not None:
        lines += ["", naive_line(naive, cases)]
    lines.append("")
    return "\n".join(lines)


def _case_lines(cases: list[Case]) -> list[str]:
    lines = [
        "| scenario | GPUs | event time | records (MB) | GPU samples | end to end, one worker "
        "| sustained (after the first tick) | x target 2.2 M/s | offline `Pipeline` | offline "
        "worker, no Kafka | end to end / offline worker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        assert c.live is not None
        lines.append(
            f"| {c.label} | {c.gpus:,} | {c.seconds:g} s | {c.records:,} ({c.mbytes:,.0f}) | "
            f"{c.live['samples']:,} | {_m(c.live_rate)}/s | {_m(c.steady_rate)}/s | "
            f"{c.steady_rate / TARGET:.3f} | "
            f"{_m(c.offline_rate)}/s | {_m(c.offline_worker_rate)}/s | "
            f"{c.live_rate / c.offline_worker_rate:.2f} |"
        )
    lines += [
        "",
        "Where the live worker's time went (wall seconds from its first batch to the end, "
        "the tail included; CPU = process CPU time over the same window, 2 CPUs available):",
        "",
        "| scenario | wall | decode + validate | fold + ticks | rows, snapshots, KPI "
        "encoding | waits for room in the DuckDB queue | end: final snapshot, DuckDB "
        "drained | publish | Faust, aiokafka, loop | batches (mean records) | CPU | start-up |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        assert c.live is not None
        p = c.live["probe"]
        wall = c.live_window + c.live_tail
        rest = c.live_window - p["on_records_s"]
        built = p["process_s"] - p["ingest_s"] - p["advance_s"]
        in_on = p["on_records_s"] - p["process_s"] + p["flush_s"]  # the flush is a process()
        own = in_on - p["db_s"] - p["publish_s"]
        cpu = p["cpu_last"] - p["cpu_first"]

        def pc(x: float, wall: float = wall) -> str:
            return f"{x:.2f} s ({100 * x / wall:.0f}%)"

        lines.append(
            f"| {c.label} | {wall:.2f} s | {pc(p['ingest_s'])} | {pc(p['advance_s'])} | "
            f"{pc(built + max(0.0, own))} | {pc(p['db_s'])} | {pc(p['close_s'])} | "
            f"{pc(p['publish_s'])} | {pc(rest)} | {p['batches']:,} "
            f"({p['records'] / max(1, p['batches']):.0f}) | {cpu / c.live_window:.2f} | "
            f"{p['first'] - c.live_spawn:.1f} s |"
        )
    lines += [
        "",
        "Transport floors on the same topics (records/s of every input topic; a JSON telemetry "
        "record carries ~64 GPU samples, a binary one K times that; the last column turns "
        "the Faust floor into GPU samples/s at this case's samples per record), nothing "
        "decoded:",
        "",
        "| scenario | aiokafka `getmany`, 1 MB/partition fetch | same, 8 MB fetch | Faust "
        "`take_events` (make_app, no-op worker) | live worker | GPU samples per record | "
        "Faust floor in GPU samples/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        assert c.aiokafka_drain
        assert c.aiokafka_drain_big
        assert c.faust_drain
        assert c.live

        def rate(d: dict[str, Any]) -> float:
            return float(d["n"]) / max(1e-9, float(d["last"] - d["first"]))
        ak, ak8, fd = rate(c.aiokafka_drain), rate(c.aiokafka_drain_big), rate(c.faust_drain)
        live = c.live["records"] / (c.live_window + c.live_tail)
        mb = c.mbytes / c.records
        per = c.live["samples"] / max(1, c.records)
        lines.append(
            f"| {c.label} | {ak:,.0f}/s ({ak * mb:,.0f} MB/s) | {ak8:,.0f}/s | "
            f"{fd:,.0f}/s | {live:,.0f}/s | {per:,.0f} | {_m(fd * per)}/s |"
        )
    for c in cases:
        assert c.offline
        assert c.live
        same = "equal" if c.offline["checksum"] == c.live["checksum"] else "DIFFERENT"
        folded = ("every sample folded" if c.live["samples"] == c.offline["samples"] else
                  f"ONLY {c.live['samples']:,} of {c.offline['samples']:,} samples folded")
        lines.append("")
        lines.append(
            f"{c.label}: {folded}, live and offline state checksums {same}; longest batch "
            f"{c.live['probe']['max_batch_s']:.2f} s; {c.live['ticks']} ticks, "
            f"{c.live['snapshots']} snapshots, {c.live['dead_letters']} dead letters; produce "
            f"{c.records / c.produce_s:,.0f} records/s; load average {c.load_start} at the "
            f"start, {c.load_end} at the end."
        )
    for c in cases:
        json_case = next(
            (j for j in cases if j.scenario == c.scenario and not j.readings
             and j.delivery == c.delivery), None
        )
        if c.readings and json_case is not None:
            assert c.live is not None
            assert json_case.live is not None
            lines.append("")
            lines.append(
                f"{c.scenario}, {c.delivery} delivery, binary with {c.readings} "
                f"readings/message against JSON in the same run: end to end "
                f"{_m(c.live_rate)}/s vs {_m(json_case.live_rate)}/s = "
                f"**{c.live_rate / json_case.live_rate:.1f}x**, "
                f"{c.live_rate / TARGET:.2f} of the 2.2 M/s target; offline `Pipeline` "
                f"{c.offline_rate / json_case.offline_rate:.1f}x; state checksums of the two "
                f"{_same_state(c, json_case)}."
            )
    for c in cases:
        agent = next((a for a in cases if a.delivery == "agent" and a.scenario == c.scenario
                      and a.readings == c.readings), None)
        if c.delivery == "batch" and agent is not None:
            assert c.live is not None
            assert agent.live is not None
            lines.append("")
            lines.append(
                f"{c.label}: batch against agent delivery on the same backlog: end to end "
                f"{_m(c.live_rate)}/s vs {_m(agent.live_rate)}/s = "
                f"**{c.live_rate / agent.live_rate:.1f}x**; sustained {_m(c.steady_rate)}/s vs "
                f"{_m(agent.steady_rate)}/s = {c.steady_rate / agent.steady_rate:.1f}x, "
                f"{c.steady_rate / TARGET:.2f} of the 2.2 M/s target; state checksums "
                f"{_same_state(c, agent)}."
            )
    return lines


def _same_state(a: Case, b: Case) -> str:
    """Whether two live workers folded the same state."""
    assert a.live is not None
    assert b.live is not None
    return "equal" if a.live["checksum"] == b.live["checksum"] else "DIFFERENT"


def naive_line(naive: dict[str, Any], cases: list[Case]) -> str:
    line = (
        f"Naive baseline (same run): {naive['n']:,} per-GPU JSON messages "
        f"({naive['bytes'] / naive['n']:.0f} B each) of the small scenario, one Faust agent "
        f"over `stream.items()`, per-GPU state in a Faust Table (memory store + changelog), "
        f"the same fetch wait as make_app: **{naive['rate']:,.0f} GPU samples/s** "
        f"({naive['bad']} rejected, {naive['dup']} duplicates)"
    )
    if not cases:
        return line + "."
    small = next((c for c in cases if c.scenario == "small"), cases[0])
    return line + (
        f"; the twin's worker on {small.scenario}: {small.live_rate:,.0f}/s = "
        f"**{small.live_rate / naive['rate']:.1f}x** the naive agent."
    )


def main() -> None:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog="See the module docstring (bench/bench_worker.py) for what is measured.",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--small-seconds", type=float, default=600.0,
                        help="event time of the small scenario (3,360 GPUs) (default 600)")
    parser.add_argument("--full-seconds", type=float, default=30.0,
                        help="event time of colossus1-mixed (220,000 GPUs) (default 30; 0 skips)")
    parser.add_argument("--binary-readings", type=int, default=10,
                        help="also run colossus1-mixed with binary telemetry, this many "
                        "readings a message (default 10; 0 skips)")
    parser.add_argument("--binary-only", action="store_true",
                        help="colossus1-mixed with binary telemetry only (no JSON case)")
    parser.add_argument("--naive-samples", type=int, default=100_000,
                        help="per-GPU messages for the naive baseline (default 100,000; 0 skips)")
    parser.add_argument("--quick", action="store_true",
                        help="short run: 120 s small, 10 s full facility, 20,000 naive samples")
    parser.add_argument("--tick", type=float, default=10.0, help="tick length, s (default 10)")
    parser.add_argument("--lateness", type=float, default=1.0,
                        help="the worker's lateness, s of event time (default 1)")
    parser.add_argument("--idle-exit", type=float, default=2.0,
                        help="the worker's stop timer, s (it stops once caught up; default 2)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="give up on a child process after this many seconds (default 900)")
    parser.add_argument("--dir", type=Path, default=None, help="folder for the temporary data")
    parser.add_argument("--delivery", default="agent,batch",
                        help="live workers per case, comma-separated: agent (Faust agent "
                        "streams) and/or batch (whole fetches, streams.delivery) "
                        "(default agent,batch)")
    parser.add_argument("--append", action="store_true", help="append to bench/RESULTS.md")
    args = parser.parse_args()
    args.delivery = [d.strip() for d in args.delivery.split(",") if d.strip()]
    bad = [d for d in args.delivery if d not in ("agent", "batch")]
    if bad or not args.delivery:
        parser.error(f"--delivery: agent and/or batch, not {','.join(bad) or 'nothing'}")
    if args.child is not None:
        spec = json.loads(args.child.read_text())
        CHILDREN[spec["mode"]](spec)
        return
    if args.quick:
        args.small_seconds, args.full_seconds = min(args.small_seconds, 120.0), min(
            args.full_seconds, 10.0)
        args.naive_samples = min(args.naive_samples, 20_000)
    info = machine_info()
    print("\n".join(info), flush=True)
    args.revision = code_revision()
    tag = f"{os.getpid()}-{int(time.time())}"
    cases: list[Case] = []
    naive = None
    with sigterm_unwinds(), tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        with bench_broker(folder) as (settings, own):
            from streams.topics import ensure_topics  # noqa: PLC0415

            ensure_topics(settings, bootstrap=settings.bootstrap_servers)
            where = ("a local single-node Kafka started for the run (same machine)" if own
                     else f"the configured cluster {settings.bootstrap_servers}")
            plan = [("small", args.small_seconds, 0)]
            if not args.binary_only:
                plan.append(("colossus1-mixed", args.full_seconds, 0))
            if args.binary_readings > 0:
                plan.append(("colossus1-mixed", args.full_seconds, args.binary_readings))
            for scenario, seconds, readings in plan:
                if seconds > 0:
                    cases.extend(run_case(settings, scenario, seconds, folder, args=args,
                                          tag=tag, readings=readings))
            if args.naive_samples > 0:
                naive = run_naive(settings, args.naive_samples, folder, args, tag)
    info[-1] = info[-1].replace("load average at start", "load average at the start")
    entry = report(cases, naive, info, where, args)
    print()
    print(entry)
    if args.append:
        append_results(entry)
        print(f"appended to {Path(__file__).resolve().parent / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
