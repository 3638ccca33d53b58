"""CLI errors of the stream commands: a message and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["worker", "--idle-exit", "-3"], "--idle-exit"),
        (["worker", "--tick-s", "0"], "--tick-s"),
        (["run", "--duration", "forever"], "duration"),
        (["run", "--scenario", "no-such-scenario"], "no-such-scenario"),
        (["run", "--workers", "0"], "--workers"),
        (["merge", "--idle-exit", "0"], "--idle-exit"),
        (["merge", "--tick-s", "-1"], "--tick-s"),
    ],
)
def test_bad_arguments_get_a_message_not_a_traceback(argv: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "TWIN_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
