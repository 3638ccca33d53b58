"""The Faust worker against a real broker: live equals offline replay, dead letters, crash
recovery (SIGKILL mid-run, restart: same state, no KPI row missing or duplicated). Each test runs
with both deliveries of facility.gpu: the Faust agent's stream and whole fetches
(``TWIN_DELIVERY=batch``, streams/delivery.py)."""

from __future__ import annotations

import base64
import json
import signal
import time
from pathlib import Path

import duckdb
import orjson
import pytest
from kafka import KafkaConsumer

from streams.settings import Settings
from tests.integration.stream_support import (
    last_checksum,
    offline_reference,
    produce,
    simulate_records,
    wait_exit,
    worker_env,
    worker_process,
)

pytestmark = pytest.mark.integration
DELIVERIES = pytest.mark.parametrize("delivery", ["agent", "batch"])

BAD = [
    ("facility.gpu", b"c1-h1-r0001", b"{not json"),
    ("facility.jobs", b"job-x", orjson.dumps({"event_type": "job_step", "schema_version": 1})),
    ("facility.power", b"c1-h1", orjson.dumps({"event_type": "no_such_event"})),
]


def _kpi_rows(db: Path, run_id: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT tick_end_ns, scope, scope_id, mfu, energy_j, it_energy_j FROM kpi"
            " WHERE run_id = ? ORDER BY 1, 2, 3",
            [run_id],
        ).fetchall()
    finally:
        con.close()


@DELIVERIES
def test_live_worker_equals_offline_replay_and_dead_letters_bad_events(
    broker_settings: Settings, kafka_bootstrap: str, tmp_path: Path, delivery: str
) -> None:
    records = simulate_records(90.0)
    want_checksum, want_ticks = offline_reference(records)
    run = f"live-eq-{delivery}"
    env = worker_env(broker_settings, tmp_path, run)
    env["TWIN_DELIVERY"] = delivery
    with worker_process(env, "--fresh", "--idle-exit", "4") as proc:
        # bad events in the middle of good ones: dead-lettered, the worker keeps folding
        half = len(records) // 2
        produce(kafka_bootstrap, records[:half] + BAD + records[half:])
        out = wait_exit(proc)
    assert "3 dead letters" in out
    assert last_checksum(tmp_path / "twin.duckdb", run) == want_checksum

    rows = _kpi_rows(tmp_path / "twin.duckdb", run)
    facility = [r for r in rows if r[1] == "facility"]
    assert [r[0] for r in facility] == [t.end_ns for t in want_ticks]
    for row, tick in zip(facility, want_ticks, strict=True):
        assert row[3] == pytest.approx(tick.kpi("facility", row[2], "mfu"), rel=1e-12)

    con = duckdb.connect(str(tmp_path / "twin.duckdb"), read_only=True)
    reasons = dict(
        con.execute("SELECT topic, reason FROM deadletters WHERE run_id = ?", [run]).fetchall()
    )
    con.close()
    assert set(reasons) == {"facility.gpu", "facility.jobs", "facility.power"}
    assert "no_such_event" in reasons["facility.power"]

    # the dead-letter topic carries the reason and the original bytes
    consumer = KafkaConsumer(
        "twin.deadletter", bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    letters = [json.loads(m.value) for m in consumer]
    consumer.close()
    originals = {base64.b64decode(d["value_b64"]) for d in letters}
    assert {v for _, _, v in BAD} <= originals
    assert all(d["reason"] for d in letters)


def _count_ticks(bootstrap: str, run_id: str, stop_at: int, timeout_s: float) -> int:
    consumer = KafkaConsumer(
        "twin.kpis", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        consumer_timeout_ms=500,
    )
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(seen) < stop_at:
            for m in consumer:
                if m.key == b"facility":
                    body = json.loads(m.value)
                    if body["run_id"] == run_id:
                        seen.add(body["tick_end_ns"])
                if len(seen) >= stop_at:
                    break
    finally:
        consumer.close()
    return len(seen)


@DELIVERIES
def test_sigkill_mid_run_then_restart_gives_the_uninterrupted_state(
    broker_settings: Settings, kafka_bootstrap: str, tmp_path: Path, delivery: str
) -> None:
    records = simulate_records(240.0)
    want_checksum, want_ticks = offline_reference(records)
    run = f"crash-{delivery}"
    env = worker_env(broker_settings, tmp_path, run)
    env["TWIN_SNAPSHOT_EVERY"] = "2"
    env["TWIN_DELIVERY"] = delivery
    with worker_process(env, "--fresh") as proc:
        produce(kafka_bootstrap, records)
        seen = _count_ticks(kafka_bootstrap, run, stop_at=8, timeout_s=120)
        assert seen >= 8, "the worker did not get going"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # restart: resumes from its newest snapshot, replays the tail, stops when idle
    with worker_process(env, "--idle-exit", "4") as proc:
        assert proc.stderr is not None
        out = wait_exit(proc)
    assert "ticks" in out
    db = tmp_path / "twin.duckdb"
    assert last_checksum(db, run) == want_checksum
    rows = _kpi_rows(db, run)
    keys = [(r[0], r[1], r[2]) for r in rows]
    assert len(keys) == len(set(keys)), "a KPI row was written twice"
    facility_ticks = sorted({r[0] for r in rows if r[1] == "facility"})
    assert facility_ticks == [t.end_ns for t in want_ticks], "a tick is missing"
    for row in rows:
        if row[1] == "facility":
            tick = next(t for t in want_ticks if t.end_ns == row[0])
            assert row[3] == pytest.approx(tick.kpi("facility", row[2], "mfu"), rel=1e-12)
