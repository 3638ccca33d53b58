"""The checked-in JSON Schema files match the models; ``twin schemas`` writes and checks them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas.examples import example_payloads
from schemas.jsonschema import (
    SCHEMA_DIR,
    check_json_schemas,
    event_json_schema,
    render_json_schemas,
    write_json_schemas,
)
from schemas.union import EVENT_MODELS
from streams.cli import schemas_cmd
from streams.cli.main import COMMAND_MODULES, CliError


def test_checked_in_files_match_the_models() -> None:
    problems = check_json_schemas(SCHEMA_DIR)
    assert problems == [], "JSON Schema drift; run `twin schemas --write`:\n" + "\n".join(problems)


def test_rendering_is_deterministic() -> None:
    first = render_json_schemas()
    assert first == render_json_schemas()
    assert sorted(first) == sorted(f"{t}.json" for t in EVENT_MODELS)
    for content in first.values():
        assert content.endswith(b"}\n")


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_schema_describes_the_wire_form(event_type: str) -> None:
    schema = event_json_schema(event_type)
    assert schema["additionalProperties"] is False
    assert {"event_type", "schema_version", "ts_ns", "source_id", "seq"} <= set(schema["required"])
    assert schema["properties"]["event_type"]["const"] == event_type
    assert set(example_payloads()[event_type]) <= set(schema["properties"])
    assert schema["x-kafka-topic"].startswith("facility.")


def test_telemetry_schema_carries_the_column_ranges() -> None:
    props = event_json_schema("gpu_telemetry")["properties"]
    assert props["temp_c"]["items"] == {"type": "number", "minimum": -20, "maximum": 130}
    assert props["gpu_index"]["maxItems"] == 1024
    assert props["power_w"]["items"]["maximum"] == 1800  # 1.5 x the largest TDP


def test_drift_is_detected(tmp_path: Path) -> None:
    assert len(write_json_schemas(tmp_path)) == len(EVENT_MODELS)
    assert write_json_schemas(tmp_path) == []  # nothing changes the second time
    assert check_json_schemas(tmp_path) == []
    path = tmp_path / "job_step.json"
    schema: dict[str, Any] = orjson.loads(path.read_bytes())
    schema["properties"]["tokens"]["exclusiveMinimum"] = 1
    path.write_bytes(orjson.dumps(schema))
    (tmp_path / "job_teleported.json").write_text("{}\n")
    (tmp_path / "lease_ended.json").unlink()
    assert check_json_schemas(tmp_path) == [
        f"{tmp_path / 'job_step.json'}: differs from the models",
        f"{tmp_path / 'lease_ended.json'}: missing",
        f"{tmp_path / 'job_teleported.json'}: no event type of that name (delete it)",
    ]


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="twin")
    schemas_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["schemas", *argv])
    code: int = args.func(args)
    return code


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "streams.cli.schemas_cmd" in COMMAND_MODULES
    out = tmp_path / "json"
    assert _run("--check", "--out", str(out)) == 1
    assert "missing" in capsys.readouterr().out
    assert _run("--write", "--out", str(out)) == 0
    assert f"20 of 20 schema files changed in {out}" in capsys.readouterr().out
    assert _run("--check", "--out", str(out)) == 0
    assert "match the models" in capsys.readouterr().out
    assert _run() == 0
    listing = capsys.readouterr().out
    assert "gpu_telemetry" in listing
    assert "facility.gpu" in listing


def test_cli_user_errors(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(CliError, match="not a folder"):
        _run("--check", "--out", str(not_a_dir))
    with pytest.raises(SystemExit):
        _run("--write", "--check")
