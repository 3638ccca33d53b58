"""The event-log file: what goes in comes out, in order; damage is reported, not ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.eventlog import MAGIC, EventLogError, EventLogWriter, read_eventlog
from sim.run import MemorySink, simulate
from sim.scenario import load_scenario


def test_round_trip_of_a_simulation(tmp_path: Path) -> None:
    path = tmp_path / "run.twinlog"
    memory = MemorySink()
    simulate(load_scenario("small"), 5.0, sink=memory)
    with EventLogWriter(path) as writer:
        result = simulate(load_scenario("small"), 5.0, sink=writer)
    back = list(read_eventlog(path))
    assert back == memory.records
    assert writer.records == len(back) == result.stats.records
    assert writer.bytes == path.stat().st_size


def test_keys_may_be_absent_or_empty(tmp_path: Path) -> None:
    path = tmp_path / "k.twinlog"
    records = [("t.a", None, b"{}"), ("t.b", b"", b"x" * 70_000), ("t.a", b"k", b"")]
    with EventLogWriter(path) as writer:
        writer.write(records)
        writer.write([])
    assert list(read_eventlog(path)) == records


def test_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "empty.twinlog"
    EventLogWriter(path).close()
    assert path.read_bytes() == MAGIC
    assert list(read_eventlog(path)) == []


def test_not_an_event_log(tmp_path: Path) -> None:
    path = tmp_path / "other.bin"
    path.write_bytes(b"PK\x03\x04 something else")
    with pytest.raises(EventLogError, match="not an event-log file"):
        list(read_eventlog(path))


def test_truncated_log(tmp_path: Path) -> None:
    path = tmp_path / "cut.twinlog"
    with EventLogWriter(path) as writer:
        writer.write([("t", b"k", b"0123456789")] * 3)
    data = path.read_bytes()
    path.write_bytes(data[:-4])
    reader = read_eventlog(path)
    assert next(reader) == ("t", b"k", b"0123456789")
    with pytest.raises(EventLogError, match="truncated record"):
        list(reader)
    path.write_bytes(data[: len(MAGIC) + 3])
    with pytest.raises(EventLogError, match="truncated record header"):
        list(read_eventlog(path))
