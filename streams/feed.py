"""Feeding the topics from the simulator in a background thread (``twin run``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sim.config import Scenario
from sim.producer import KafkaSink
from sim.run import simulate
from streams.settings import Settings

__all__ = ["simulate_into_kafka"]


class _HaltedError(Exception):
    pass


def simulate_into_kafka(
    settings: Settings,
    bootstrap: str,
    scenario: Scenario,
    duration_s: float,
    speed: float | None,
    *,
    halt: threading.Event,
    progress: Callable[[str], Any],
) -> None:
    """Simulate ``scenario`` into the facility topics; return early (quietly) once ``halt`` is
    set. What the simulator or the producer raises propagates."""

    def check(_: Any) -> None:
        if halt.is_set():
            raise _HaltedError

    try:
        with KafkaSink(settings.kafka_python_kwargs(bootstrap)) as sink:
            result = simulate(scenario, duration_s, sink=sink, speed=speed, progress=check)
    except _HaltedError:
        return
    s = result.stats
    progress(
        f"simulated {s.sim_seconds:.0f} s of {scenario.name}: {s.records:,} events, "
        f"{s.gpu_samples:,} GPU samples in {s.wall_s:.1f} s"
    )
