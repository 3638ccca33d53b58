"""`twin demo` end to end on its own local broker: it leaves no process behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from streams.cli.main import main
from tests.conftest import local_broker_settings
from tests.integration.test_local_broker import _jvms_using

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("java") is None, reason="the local broker needs a JDK"),
]


def test_demo_round_trip_leaves_no_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TWIN_KAFKA_BOOTSTRAP", raising=False)
    settings = local_broker_settings(tmp_path / "data")
    argv = [
        "demo",
        "--data-dir", str(settings.data_dir),
        "--broker-port", str(settings.broker_port),
        "--broker-controller-port", str(settings.broker_controller_port),
    ]  # fmt: skip
    for run in range(2):  # twice: the second run finds the data of the first and still works
        assert main(argv) == 0, f"run {run}"
        out = capsys.readouterr().out
        assert f"local broker at {settings.local_bootstrap}" in out
        assert out.count("link_state") == 3
        assert out.count("energy_price") == 1
        assert "local broker stopped" in out
        assert _jvms_using(settings.broker_dir.resolve()) == []
