"""``twin simulate``: flags, errors as one clear line, file output, the truth summary."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from sim.eventlog import read_eventlog
from sim.run import simulate
from sim.scenario import load_scenario
from sim.truth import TruthTable
from streams.cli import simulate_cmd
from streams.cli.main import CliError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin")
    sub = parser.add_subparsers(dest="command")
    simulate_cmd.register(sub)
    return parser


def _run(*argv: str) -> int:
    args = _parser().parse_args(["simulate", *argv])
    code: int = args.func(args)
    return code


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--scenario", "small", "--duration", "10x"), "--duration: bad duration '10x'"),
        (("--scenario", "small", "--duration", "0s"), "--duration: must be > 0"),
        (("--scenario", "small", "--speed", "fast"), "--speed: expected 'max' or a number > 0"),
        (("--scenario", "small", "--speed", "-2"), "--speed: expected 'max' or a number > 0"),
        (("--duration", "1m"), "--scenario is required"),
        (("--scenario", "atlantis"), "unknown scenario 'atlantis'"),
        (("--scenario", "small", "--summary", "--out", "x.log"), "--summary emits nothing"),
        (("--scenario", "small", "--interval", "5"), "--interval only applies with --summary"),
        (
            ("--scenario", "small", "--summary", "--interval", "7"),
            "truth_tick_s (10 s) is not a whole multiple of the simulation interval (7 s)",
        ),
    ],
)
def test_bad_flags_are_cli_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(CliError) as err:
        _run(*argv)
    assert message in str(err.value)


def test_help_names_env_vars(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for var in ("TWIN_KAFKA_BOOTSTRAP", "TWIN_DATA_DIR", "TWIN_SASL_PASSWORD"):
        assert f"[env: {var}]" in text


def test_out_and_truth_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, truth = tmp_path / "run.twinlog", tmp_path / "truth.parquet"
    assert (
        _run(
            "--scenario",
            "small",
            "--duration",
            "12s",
            "--out",
            str(out),
            "--truth",
            str(truth),
            "--no-progress",
        )
        == 0
    )
    records = list(read_eventlog(out))
    assert any(t == "facility.gpu" for t, _, _ in records)
    assert len(TruthTable.read_parquet(truth).select("facility")) == 1
    text = capsys.readouterr().out
    assert "GPU samples" in text
    assert "facility MFU" in text


def test_summary_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--scenario", "small", "--duration", "10m", "--summary", "--json") == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    summary = doc["summary"]
    assert summary["gpus"] == 3360
    assert 0.10 <= summary["mfu"] <= 0.15
    assert summary["full_load_facility_mw"] > summary["full_load_it_mw"]


def test_speed_paces_event_time() -> None:
    """At speed N, after each interval the run sleeps until wall time catches up with
    event time / N (an injected clock: no real waiting, no timing thresholds)."""
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    simulate(load_scenario("small"), 4.0, speed=2.0, monotonic=lambda: now[0], sleep=sleep)
    assert slept == pytest.approx([0.5, 0.5, 0.5, 0.5])
