"""The worker runtime without Kafka: DuckDB writes queued (not awaited) land exactly what awaited
writes land, a failed write surfaces, a finished run's partial worker keeps its partitions, and
the simulator's producer puts low-volume events at the broker before later telemetry."""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

import sim.producer
from streams.cli.main import CliError
from streams.cli.worker_cmd import close_worker
from streams.pipeline import CLOCK_TOPIC
from streams.worker import TwinWorker, WorkerConfig, write_stop_file
from tests.unit.stream_support import simulated_records

TABLES = ("kpi", "ledger", "stragglers", "tick_counts", "gpu_snapshot")


def _dump(db: Path, run_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the run, NaN made comparable."""

    def row(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in r)

    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: [row(r) for r in con.execute(
                f"SELECT * FROM {t} WHERE run_id = ? ORDER BY ALL", [run_id]).fetchall()]
            for t in TABLES
        }
    finally:
        con.close()


async def _feed(worker: TwinWorker, *, hold_writer: bool) -> None:
    """Every record of 120 s of the small scenario in batches; with ``hold_writer`` the DuckDB
    thread is held until every batch is folded, so each queued write lands after later folds
    changed the state (a write built from live state, not copies, would show it)."""
    gate = threading.Event()
    if hold_writer:
        worker.writer.submit(lambda con: gate.wait(60))
    records = simulated_records(120.0)
    for i in range(0, len(records), 400):
        await worker.on_records(records[i : i + 400])
    gate.set()
    worker.flush()


@pytest.mark.parametrize("hold_writer", [False, True])
def test_queued_writes_land_what_awaited_writes_land(tmp_path: Path, hold_writer: bool) -> None:
    config = WorkerConfig(run_id="w", snapshot_every=2)
    # reference: every operation awaited in the order process() built it
    ref = TwinWorker(config, tmp_path / "ref.duckdb")
    ref.start(fresh_from={})
    records = simulated_records(120.0)
    for i in range(0, len(records), 400):
        ops, _, _ = ref.process(records[i : i + 400])
        for op in ops:
            ref.writer.run(op)
    ref.flush()
    ref.close()

    live = TwinWorker(config, tmp_path / "live.duckdb")
    live.start(fresh_from={})
    asyncio.run(_feed(live, hold_writer=hold_writer))
    live.close()

    want, got = _dump(tmp_path / "ref.duckdb", "w"), _dump(tmp_path / "live.duckdb", "w")
    assert len(want["kpi"]) > 100
    assert len(want["gpu_snapshot"]) >= 3 * 3360  # several snapshots with per-GPU rows
    for table in TABLES:
        assert got[table] == want[table], table


def test_a_failed_write_surfaces_on_a_later_batch(tmp_path: Path) -> None:
    worker = TwinWorker(WorkerConfig(run_id="f"), tmp_path / "f.duckdb")
    worker.start(fresh_from={})

    def broken(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("INSERT INTO no_such_table VALUES (1)")

    async def go() -> None:
        worker._writes.append(await worker.writer.aqueue(broken))
        worker.writer.run(lambda con: None)  # the broken write has run by now
        await worker.on_records(simulated_records(30.0)[:50])

    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        asyncio.run(go())
    worker.close(final_snapshot=False)


def test_a_finished_partial_worker_keeps_its_partitions(tmp_path: Path) -> None:
    worker = TwinWorker(WorkerConfig(run_id="p", partial=True), tmp_path / "p.duckdb")
    worker.stop_file = tmp_path / "stop.json"
    worker.assign([0, 2, 4, 6], 8)
    worker.assign([0, 1, 2, 4, 6], 8)  # mid-run (no stop file yet): a rebalance is taken
    assert worker.telemetry_held == (0, 1, 2, 4, 6)
    write_stop_file(worker.stop_file, {(CLOCK_TOPIC, p): 10 for p in range(8)})
    worker.assign(list(range(8)), 8)  # another worker left, done: nothing to take over
    assert worker.telemetry_held == (0, 1, 2, 4, 6)
    assert worker.pipeline.ownership is not None
    worker.assign([0, 2], 8)  # giving partitions up is always taken
    assert worker.telemetry_held == (0, 2)


class _Producer:
    """Stands in for kafka-python's producer: records what was sent and when it was flushed."""

    def __init__(self, **_: Any) -> None:
        self.log: list[str] = []

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> Any:
        self.log.append(topic)

        class _Future:
            def add_errback(self, fn: Any) -> None:
                pass

        return _Future()

    def flush(self, timeout: float | None = None) -> None:
        self.log.append("FLUSH")

    def close(self) -> None:
        pass


def test_the_producer_flushes_low_volume_events_before_later_telemetry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sim.producer, "KafkaProducer", _Producer)
    sink = sim.producer.KafkaSink({})
    producer = sink._producer
    assert isinstance(producer, _Producer)
    sink.write([(CLOCK_TOPIC, b"r1", b"x"), (CLOCK_TOPIC, b"r2", b"x")])
    assert producer.log == [CLOCK_TOPIC, CLOCK_TOPIC]  # telemetry alone: no wait
    sink.write([("facility.jobs", b"j", b"x"), (CLOCK_TOPIC, b"r1", b"x")])
    assert producer.log[2:] == ["facility.jobs", CLOCK_TOPIC, "FLUSH"]
    sink.write([(CLOCK_TOPIC, b"r1", b"x")])
    assert producer.log[-1] == CLOCK_TOPIC


def test_a_queued_snapshot_is_taken_when_built_not_when_written(tmp_path: Path) -> None:
    worker = TwinWorker(WorkerConfig(run_id="s"), tmp_path / "s.duckdb")
    worker.start(fresh_from={})
    worker.process(simulated_records(30.0), flush=True)
    st = worker.state
    n = st.n["gpu"]
    op = worker._snapshot_op()
    before = {
        "status": st.gpu_status[:n].tolist(),
        "power_w": st.gpu_last_power_w[:n].astype(float).tolist(),
    }
    # the fold goes on before the writer gets to the snapshot
    st.gpu_status[:n] = 3
    st.gpu_last_power_w[:n] = -1.0
    worker.writer.run(op)
    con_rows = worker.writer.run(
        lambda con: con.execute(
            "SELECT status, power_w FROM gpu_snapshot WHERE run_id = 's' ORDER BY gpu_index"
        ).fetchall()
    )
    worker.close(final_snapshot=False)
    assert [r[0] for r in con_rows] == before["status"]
    assert [r[1] for r in con_rows] == pytest.approx(before["power_w"])


def test_a_write_that_fails_at_the_end_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    worker = TwinWorker(WorkerConfig(run_id="e"), tmp_path / "e.duckdb")
    worker.start(fresh_from={})
    worker._writes.append(
        worker.writer.submit(lambda con: con.execute("INSERT INTO no_such_table VALUES (1)"))
    )
    with pytest.raises(CliError, match=r"a DuckDB write failed.*no_such_table"):
        close_worker(worker)
