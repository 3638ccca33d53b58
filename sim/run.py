"""Running a scenario: the simulator, a sink for its records, pacing and progress.

This is the imperative shell around :class:`sim.engine.Simulator`: it reads the wall clock only
to pace event time at ``speed`` x real time, which never changes what is emitted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sim.config import Scenario
from sim.engine import Simulator
from sim.records import Record
from sim.summary import Summary, summarize
from sim.truth import TruthTable

__all__ = ["MemorySink", "RunResult", "RunStats", "Sink", "simulate"]


class Sink(Protocol):
    """Where records go: an event-log file, Kafka, memory."""

    def write(self, records: list[Record]) -> None: ...

    def flush(self) -> None: ...


class MemorySink:
    """Keeps every record in a list (tests, small runs)."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def write(self, records: list[Record]) -> None:
        self.records.extend(records)

    def flush(self) -> None:
        return None


@dataclass(slots=True)
class RunStats:
    """What a run did; ``wall_s`` is the only figure that depends on the machine."""

    sim_seconds: float = 0.0
    intervals: int = 0
    records: int = 0
    bytes: int = 0
    gpu_samples: int = 0
    wall_s: float = 0.0

    @property
    def x_real_time(self) -> float:
        return self.sim_seconds / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def gpu_samples_per_s(self) -> float:
        return self.gpu_samples / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class RunResult:
    stats: RunStats
    truth: TruthTable
    summary: Summary
    simulator: Simulator


Progress = Callable[[RunStats], None]


def simulate(
    scenario: Scenario,
    duration_s: float,
    *,
    sink: Sink | None = None,
    interval_s: float | None = None,
    speed: float | None = None,
    progress: Progress | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """Run ``scenario`` for ``duration_s`` seconds of event time.

    With a ``sink`` every record goes to it; without one only the physics and the ground truth
    are computed (``interval_s`` may then be coarser than the telemetry interval, e.g. the truth
    tick, for long summary runs). ``speed``: event seconds per wall second (None = as fast as
    possible).
    """
    sim = Simulator(scenario, emit=sink is not None, interval_s=interval_s)
    stats = RunStats()
    n = max(1, round(duration_s / sim.dt + 0.4999999))
    start = monotonic()
    for _ in range(n):
        records = sim.step()
        if sink is not None and records:
            sink.write(records)
            stats.records += len(records)
            stats.bytes += sum(len(v) for _, _, v in records)
        stats.intervals += 1
        stats.sim_seconds = sim.t
        stats.gpu_samples = sim.out.gpu_samples if sim.out is not None else 0
        now = monotonic()
        if speed is not None and speed > 0:
            ahead = stats.sim_seconds / speed - (now - start)
            if ahead > 0:
                sleep(ahead)
                now = monotonic()
        stats.wall_s = now - start
        if progress is not None:
            progress(stats)
    if sink is not None:
        records = sim.finish()  # a binary exporter's last, shorter message
        if records:
            sink.write(records)
            stats.records += len(records)
            stats.bytes += sum(len(v) for _, _, v in records)
        sink.flush()
    stats.wall_s = monotonic() - start
    truth = sim.truth_table()
    return RunResult(stats=stats, truth=truth, summary=summarize(sim, truth), simulator=sim)
