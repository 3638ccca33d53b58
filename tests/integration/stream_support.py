"""Helpers for the worker's integration tests: produce a scenario, run ``twin worker`` as a real
process, replay the same records offline for the reference state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from sim.run import MemorySink, simulate
from sim.scenario import load_scenario
from streams.pipeline import Pipeline, Record
from streams.settings import Settings
from streams.topics import DEFAULT_PARTITIONS
from twin.checksum import state_checksum
from twin.results import TickResult
from twin.state import TwinState

__all__ = [
    "RawRecord",
    "offline_reference",
    "produce",
    "simulate_records",
    "worker_env",
    "worker_process",
]

RawRecord = tuple[str, bytes | None, bytes]


def simulate_records(seconds: float, scenario: str = "small") -> list[RawRecord]:
    sink = MemorySink()
    simulate(load_scenario(scenario), seconds, sink=sink)
    return list(sink.records)


def produce(bootstrap: str, records: list[RawRecord]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_request_size=16 << 20, acks="all"
    )
    try:
        for topic, key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=60)
    finally:
        producer.close()


def offline_reference(
    records: list[RawRecord], tick_s: float = 10.0
) -> tuple[str, list[TickResult]]:
    """State checksum and ticks of the same records folded without Kafka (partitions assigned
    the way the producer's default partitioner does; offsets only matter for resume points)."""
    offsets: dict[tuple[str, int], int] = {}
    recs = []
    for topic, key, value in records:
        n = DEFAULT_PARTITIONS[topic]
        p = (murmur2(key) & 0x7FFFFFFF) % n if key else 0
        o = offsets.get((topic, p), 0)
        offsets[(topic, p)] = o + 1
        recs.append(Record(topic, p, o, key, value))
    pipeline = Pipeline(TwinState(round(tick_s * 1e9)))
    ticks: list[TickResult] = []
    for i in range(0, len(recs), 1000):
        assert not pipeline.ingest(recs[i : i + 1000])
        ticks += pipeline.advance()
    ticks += pipeline.flush()
    return state_checksum(pipeline.state), ticks


def worker_env(settings: Settings, data_dir: Path, run_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TWIN_KAFKA_BOOTSTRAP=settings.bootstrap_servers,
        TWIN_DATA_DIR=str(data_dir),
        TWIN_DUCKDB_PATH=str(data_dir / "twin.duckdb"),
        TWIN_RUN_ID=run_id,
        TWIN_GROUP_ID=f"test-{run_id}",
    )
    return env


@contextmanager
def worker_process(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """``twin worker`` as a child process; killed (by its pid) if the test leaves it running.
    Yields once the worker has positioned its partitions (its first stderr line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "partitions positioned" in line, line + proc.stderr.read()
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def wait_exit(proc: subprocess.Popen[str], timeout_s: float = 240.0) -> str:
    """Wait for the worker to stop by itself (--idle-exit); its stdout, or fail with stderr."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"worker did not stop within {timeout_s} s:\n{err[-3000:]}") from None
    assert proc.returncode == 0, err[-3000:]
    return out


def last_checksum(db: Path, run_id: str) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(
            "SELECT checksum FROM snapshots WHERE run_id = ? ORDER BY snapshot_id DESC LIMIT 1",
            [run_id],
        ).fetchone()
    finally:
        con.close()
    assert row is not None, "no snapshot landed"
    return str(row[0])


def poll(predicate: object, timeout_s: float, every_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(every_s)
    raise AssertionError("condition not met in time")
