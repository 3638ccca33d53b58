"""CLI conventions: every flag names its environment variable; bad values give a message."""

from __future__ import annotations

import argparse

import pytest

from streams.cli.main import build_parser, main
from streams.settings import Settings, env_var

OWN_COMMANDS = ("broker", "demo")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _leaf_parsers(
    parser: argparse.ArgumentParser, prefix: str
) -> list[tuple[str, argparse.ArgumentParser]]:
    children = _subparsers(parser)
    if not children:
        return [(prefix, parser)]
    leaves = []
    for name, child in children.items():
        leaves.extend(_leaf_parsers(child, f"{prefix} {name}"))
    return leaves


@pytest.mark.parametrize("command", OWN_COMMANDS)
def test_every_flag_names_its_environment_variable(command: str) -> None:
    parser = _subparsers(build_parser())[command]
    known = {env_var(field) for field in Settings.model_fields}
    checked = 0
    for path, leaf in _leaf_parsers(parser, command):
        for action in leaf._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            help_text = action.help or ""
            named = [v for v in known if f"[env: {v}]" in help_text]
            assert named, f"twin {path} {action.option_strings[0]}: help names no TWIN_ variable"
            checked += 1
    assert checked


def test_twin_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in OWN_COMMANDS:
        assert command in out


def test_bad_flag_value_is_a_message_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    code = main(["broker", "status", "--broker-port", "port-nine"])
    err = capsys.readouterr().err
    assert code == 2
    assert "TWIN_BROKER_PORT" in err
    assert "Traceback" not in err


def test_managing_the_local_broker_with_a_cluster_configured_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWIN_KAFKA_BOOTSTRAP", "kafka.example:9092")
    assert main(["broker", "start"]) == 2
    assert "TWIN_KAFKA_BOOTSTRAP is set" in capsys.readouterr().err
