"""``twin run --workers N``: N worker processes in one consumer group, and a merger.

The run starts N ``twin worker --partial`` processes (each with its own DuckDB file for its
snapshots, under ``<data_dir>/workers/``), waits until the group has split the ``facility.gpu``
partitions among all of them, then simulates the scenario into Kafka in a thread while this
process merges the workers' ``twin.partials`` into the run's DuckDB file
(:func:`streams.merge.run_merger`). When the simulation is done it writes the topics' end
offsets to a stop file; each worker stops once it has read its partitions to there (closing
and publishing its last ticks), and the merger once every worker has exited and it has read
``twin.partials`` to its end. Every child is stopped by its pid on the way out, also on
failure or Ctrl-C.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sim.config import Scenario
from streams.app import end_offsets, write_stop_file
from streams.feed import simulate_into_kafka
from streams.merge import PartialsMerger, run_merger
from streams.pipeline import CLOCK_TOPIC
from streams.settings import Settings, env_var

__all__ = ["WorkerChild", "run_scaled_out", "worker_db_path", "worker_env"]

_HOLDS = re.compile(r"holds facility\.gpu partitions \[([0-9, ]*)\] of (\d+)")


def worker_db_path(settings: Settings, k: int) -> Path:
    """Where worker ``k`` of a scaled-out run keeps its snapshots and dead letters."""
    return settings.data_dir / "workers" / f"{settings.run_id}.w{k}.duckdb"


def worker_env(settings: Settings, bootstrap: str, k: int) -> dict[str, str]:
    """The environment of worker ``k``: every setting of this run, the broker in use, its own
    data folder and DuckDB file."""
    env = dict(os.environ)
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[env_var(name)] = str(value)
    env[env_var("kafka_bootstrap")] = bootstrap
    env[env_var("data_dir")] = str(settings.data_dir / "workers" / f"w{k}")
    env[env_var("duckdb_path")] = str(worker_db_path(settings, k))
    return env


@dataclass
class WorkerChild:
    """One worker process and what it said on stderr."""

    name: str
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    held: tuple[int, ...] | None = None
    total: int = 0
    out: str = ""

    def read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            m = _HOLDS.search(line)
            if m:
                self.held = tuple(int(p) for p in m.group(1).replace(" ", "").split(",") if p)
                self.total = int(m.group(2))

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.lines[-n:])


def _start(settings: Settings, bootstrap: str, k: int, stop_file: Path,
           log_level: str) -> WorkerChild:
    cmd = [
        sys.executable, "-m", "streams.cli", "worker", "--partial", "--fresh",
        "--member", f"w{k}", "--stop-file", str(stop_file), "--log-level", log_level,
    ]
    worker_db_path(settings, k).parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(cmd, env=worker_env(settings, bootstrap, k), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    child = WorkerChild(f"w{k}", proc)
    threading.Thread(target=child.read, name=f"stderr-w{k}", daemon=True).start()
    return child


def _wait_split(children: list[WorkerChild], partitions: int, timeout_s: float) -> None:
    """Until every worker holds a share and the shares are disjoint and cover every partition."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in children:
            if c.proc.poll() is not None:
                raise RuntimeError(f"worker {c.name} exited ({c.proc.returncode}):\n{c.tail()}")
        shares = [c.held for c in children]
        if all(shares):
            flat = [p for share in shares if share for p in share]
            if len(flat) == len(set(flat)) and set(flat) == set(range(partitions)):
                return
        time.sleep(0.2)
    said = "; ".join(f"{c.name}: {list(c.held) if c.held else 'nothing'}" for c in children)
    raise RuntimeError(f"the consumer group did not split the {partitions} facility.gpu "
                       f"partitions among the workers in {timeout_s:.0f} s ({said})")


def _stop(children: list[WorkerChild]) -> None:
    for c in children:
        if c.proc.poll() is None:
            c.proc.terminate()
    deadline = time.monotonic() + 20
    for c in children:
        try:
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait(timeout=10)


def run_scaled_out(
    settings: Settings,
    bootstrap: str,
    scenario: Scenario,
    *,
    duration_s: float,
    speed: float | None,
    workers: int,
    progress: Callable[[str], Any] = print,
    log_level: str = "error",
    split_timeout_s: float = 90.0,
) -> PartialsMerger:
    """Simulate ``scenario`` through ``workers`` partial workers and merge them into the run's
    DuckDB file. Raises RuntimeError when a worker fails or the group does not split."""
    ends = end_offsets(settings, bootstrap)
    partitions = sum(1 for (t, _) in ends if t == CLOCK_TOPIC)
    if workers > partitions:
        raise RuntimeError(f"--workers {workers} is more than the {partitions} {CLOCK_TOPIC} "
                           "partitions: the extra workers would have nothing to read")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop_file = settings.data_dir / "workers" / f"{settings.run_id}.stop.json"
    stop_file.parent.mkdir(parents=True, exist_ok=True)
    stop_file.unlink(missing_ok=True)
    children: list[WorkerChild] = []
    halt = threading.Event()
    failure: list[BaseException] = []
    try:
        for k in range(workers):
            children.append(_start(settings, bootstrap, k, stop_file, log_level))
        progress(f"run {settings.run_id}: {workers} workers (pids "
                 f"{', '.join(str(c.proc.pid) for c in children)}) joining group "
                 f"{settings.group_id}")
        _wait_split(children, partitions, split_timeout_s)
        for c in children:
            progress(f"  worker {c.name} holds facility.gpu partitions {list(c.held or ())}")

        def produce() -> None:
            try:
                simulate_into_kafka(settings, bootstrap, scenario, duration_s, speed, halt=halt,
                                    progress=progress)
            except BaseException as exc:  # surfaced after the workers stop
                failure.append(exc)
            try:  # the workers stop once they have read their partitions to here
                write_stop_file(stop_file, end_offsets(settings, bootstrap))
            except Exception as exc:
                failure.append(exc)

        feeder = threading.Thread(target=produce, name="simulator", daemon=True)
        feeder.start()
        merger = run_merger(
            settings, bootstrap, settings.duckdb_path, run_id=settings.run_id,
            scenario=scenario.name, seed=scenario.seed, tick_ns=round(settings.tick_s * 1e9),
            fresh=True,
            inputs_done=lambda: all(c.proc.poll() is not None for c in children),
        )
        feeder.join(timeout=30)
        if failure:
            raise RuntimeError(f"simulator failed: {failure[0]!r}")
        for c in children:
            if c.proc.returncode != 0:
                raise RuntimeError(f"worker {c.name} exited ({c.proc.returncode}):\n{c.tail()}")
            assert c.proc.stdout is not None
            c.out = c.proc.stdout.read().strip()
            progress(f"  {c.name}: {c.out.removeprefix('twin worker: ')}")
        s = merger.stats
        progress(f"merged {s.merged} ticks from {len(s.members)} workers; "
                 f"{s.duplicates} duplicate, {s.conflicts} overlapping partials dropped; "
                 f"{len(merger.incomplete())} ticks incomplete")
        return merger
    finally:
        halt.set()
        _stop(children)
        stop_file.unlink(missing_ok=True)
