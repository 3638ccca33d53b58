"""JSON Schema of every event, for producers written in other languages.

One file per event type, ``schemas/json/<event_type>.json``: deterministic (sorted keys, two-space
indent, trailing newline), so the checked-in files can be compared byte for byte with what the
models generate (``twin schemas --check``, and a unit test). The JSON Schema cannot say
everything the models check (equal column lengths, ``power_w`` against the TDP of
``gpu_model``, cross-field rules): descriptions say it in words, the models enforce it.

The only module of :mod:`schemas` that touches the filesystem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import orjson

from schemas.topics import EVENT_TOPIC
from schemas.union import CURRENT_VERSIONS, EVENT_MODELS

__all__ = [
    "SCHEMA_DIR",
    "check_json_schemas",
    "event_json_schema",
    "render_json_schemas",
    "write_json_schemas",
]

#: Where the checked-in schema files live.
SCHEMA_DIR: Final = Path(__file__).resolve().parent / "json"
_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


def event_json_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event type, with its topic and version."""
    schema = EVENT_MODELS[event_type].model_json_schema(mode="validation")
    schema["$schema"] = _DIALECT
    schema["x-event-type"] = event_type
    schema["x-schema-version"] = CURRENT_VERSIONS[event_type]
    schema["x-kafka-topic"] = EVENT_TOPIC[event_type]
    return schema


def render_json_schemas() -> dict[str, bytes]:
    """File name -> file content, for every event type."""
    return {
        f"{event_type}.json": orjson.dumps(
            event_json_schema(event_type), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
        + b"\n"
        for event_type in sorted(EVENT_MODELS)
    }


def write_json_schemas(out_dir: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema into ``out_dir`` (created if missing); return the files whose content
    changed. Files of event types that no longer exist are left alone (``check`` reports
    them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    changed: list[Path] = []
    for name, content in render_json_schemas().items():
        path = out_dir / name
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
            changed.append(path)
    return changed


def check_json_schemas(out_dir: Path = SCHEMA_DIR) -> list[str]:
    """Differences between ``out_dir`` and the models, one line each (empty: up to date)."""
    expected = render_json_schemas()
    problems: list[str] = []
    for name, content in expected.items():
        path = out_dir / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_bytes() != content:
            problems.append(f"{path}: differs from the models")
    if out_dir.is_dir():
        for path in sorted(out_dir.glob("*.json")):
            if path.name not in expected:
                problems.append(f"{path}: no event type of that name (delete it)")
    return problems
