"""docker-compose.yml cannot run here (no Docker engine); check what can be checked without it:
every twin service runs a real `twin` subcommand that parses, and reaches the Kafka service."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _twin_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in _compose()["services"].items()
        if not str(service.get("image", "")).startswith("apache/kafka")
    }


def test_kafka_service_is_apache_kafka_in_kraft_mode() -> None:
    kafka = _compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "healthcheck" in kafka


def test_services_include_simulator_and_worker() -> None:
    assert {"simulator", "worker"} <= set(_twin_services())


def test_each_service_command_is_a_real_twin_subcommand() -> None:
    parser = build_parser()
    known = _subcommands(parser)
    for name, service in _twin_services().items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: command must be an exec-form list"
        assert command[0] == "twin", f"{name}: runs {command[0]!r}, not the twin console script"
        assert command[1] in known, f"{name}: `twin {command[1]}` is not a twin subcommand"
        try:
            parser.parse_args(command[1:])
        except SystemExit as exc:
            pytest.fail(f"{name}: `{' '.join(command)}` does not parse (exit {exc.code})")


def test_twin_services_reach_kafka_inside_the_compose_network() -> None:
    for name, service in _twin_services().items():
        assert service["build"] == "."
        env = service["environment"]
        assert env["TWIN_KAFKA_BOOTSTRAP"] == "kafka:9092", name
        assert "kafka" in service["depends_on"], name
    assert (REPO / "Dockerfile").is_file()
