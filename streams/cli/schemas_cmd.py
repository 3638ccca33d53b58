"""``twin schemas [--write | --check] [--out DIR]``: the events' JSON Schema files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from schemas.jsonschema import SCHEMA_DIR, check_json_schemas, write_json_schemas
from schemas.topics import EVENT_TOPIC
from schemas.union import CURRENT_VERSIONS
from streams.cli.main import CliError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "schemas",
        help="list the event types, or write/check their JSON Schema files",
        description=(
            "The event contracts (docs/EVENTS.md). Without a flag, list every event type with "
            "its version and topic. --write generates one JSON Schema file per event type; "
            "--check exits 1 when the files differ from the pydantic models."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the JSON Schema files")
    mode.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from the models"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of the schema files (default: schemas/json in the package)",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    out: Path = args.out if args.out is not None else SCHEMA_DIR
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: not a folder")
    if args.write:
        try:
            changed = write_json_schemas(out)
        except OSError as exc:
            raise CliError(f"cannot write to {out}: {exc}") from exc
        print(f"{len(changed)} of {len(CURRENT_VERSIONS)} schema files changed in {out}")
        for path in changed:
            print(f"  wrote {path.name}")
        return 0
    if args.check:
        problems = check_json_schemas(out)
        for line in problems:
            print(line)
        if problems:
            print("run `twin schemas --write` to regenerate")
            return 1
        print(f"{len(CURRENT_VERSIONS)} schema files in {out} match the models")
        return 0
    width = max(map(len, CURRENT_VERSIONS))
    print(f"{'event type':<{width}}  version  topic")
    for event_type in sorted(CURRENT_VERSIONS, key=lambda t: (EVENT_TOPIC[t], t)):
        version = CURRENT_VERSIONS[event_type]
        print(f"{event_type:<{width}}  {version:>7}  {EVENT_TOPIC[event_type]}")
    return 0
