"""Shared by the stream benchmarks (bench_worker.py, bench_latency.py): a Kafka broker of their
own, child processes that are always stopped, the machine lines, appending to RESULTS.md.

Not a benchmark itself (``make bench`` runs ``bench/bench_*.py`` only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from machine import machine_lines

from streams.settings import Settings, load_settings

__all__ = [
    "HEADING",
    "INTRO",
    "RESULTS",
    "append_results",
    "bench_broker",
    "child_process",
    "code_revision",
    "load_line",
    "machine_info",
    "sigterm_unwinds",
    "utc_now",
]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADING = "## Stream worker (issue 5)"
STREAM_PACKAGES = ("faust-streaming", "aiokafka", "kafka-python", "orjson", "duckdb")
INTRO = """Produced by `bench/bench_worker.py --append` (throughput, issue 5's naive baseline) and
`bench/bench_latency.py --append` (event-to-KPI latency). Unless an entry says otherwise the
broker is a local single-node Kafka started for the run on the same 2-CPU machine as the worker,
the producer and other sessions' work, so absolute rates are low bounds; ratios are measured in
the same run."""


def machine_info() -> list[str]:
    """Platform, CPU model, cores, python and library versions, load average now."""
    return machine_lines(*STREAM_PACKAGES)


def code_revision() -> str:
    """The commit the benchmark ran (``+`` when streams/, twin/, schemas/ or sim/ differ)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "streams", "twin", "schemas", "sim"],
            cwd=root, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+" if dirty else "")


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """A SIGTERM unwinds like Ctrl-C while inside, so ``finally`` blocks stop what we started."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def bench_broker(folder: Path, *, heap: str = "512m") -> Iterator[tuple[Settings, bool]]:
    """``(settings, own)``: the cluster in ``TWIN_KAFKA_BOOTSTRAP`` (own=False; left alone), else
    a local broker started here on free ports with its data in ``folder`` and stopped on exit,
    also on errors and SIGTERM (only its own recorded pid is signalled)."""
    from streams.broker import start_broker, stop_broker  # noqa: PLC0415 - heavy, only here

    configured = load_settings(data_dir=folder)
    if configured.kafka_bootstrap is not None:
        yield configured, False
        return
    port, controller = _free_ports(2)
    settings = Settings(
        kafka_bootstrap=None,
        security_protocol="PLAINTEXT",
        data_dir=folder / "broker",
        broker_port=port,
        broker_controller_port=controller,
        broker_heap=heap,
    )
    with sigterm_unwinds():
        try:
            start_broker(settings, progress=lambda _msg: None)
            yield settings, True
        finally:
            stop_broker(settings)


@contextlib.contextmanager
def child_process(
    args: Sequence[str], env: dict[str, str] | None = None, **popen: object
) -> Iterator[subprocess.Popen[str]]:
    """``python <args>`` as a child; SIGKILLed by its pid if still running when the block ends."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        env=env,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)


def append_results(entry: str) -> None:
    """Add ``entry`` at the end of the "## Stream worker (issue 5)" section (created with
    :data:`INTRO` if missing); other sections are left as they are."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if HEADING not in text:
        text = text.rstrip("\n") + f"\n\n{HEADING}\n\n{INTRO}\n\n{entry.strip()}\n"
    else:
        start = text.index(HEADING) + len(HEADING)
        nxt = text.find("\n## ", start)
        end = len(text) if nxt < 0 else nxt + 1
        head = text[:end].rstrip("\n") + "\n\n" + entry.strip() + "\n"
        text = head + ("\n" + text[end:] if nxt >= 0 else "")
    RESULTS.write_text(text)
