"""The ``twin`` console script: one argparse parser, one module per subcommand.

Each module in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (``func(args) -> int`` exit code). Subcommands only parse and wire; logic stays in
importable modules.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

#: One entry per subcommand module under ``streams.cli``; add yours here.
COMMAND_MODULES: tuple[str, ...] = (
    "streams.cli.schemas_cmd",
    "streams.cli.mfu_cmd",
    "streams.cli.broker_cmd",
    "streams.cli.demo_cmd",
    "streams.cli.simulate_cmd",
    "streams.cli.worker_cmd",
    "streams.cli.run_cmd",
    "streams.cli.merge_cmd",
    "streams.cli.state_cmd",
    "streams.cli.query_cmd",
    "streams.cli.compare_cmd",
    "streams.cli.export_cmd",
    "streams.cli.report_cmd",
)


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="twin",
        description="Event-sourced digital twin of the Colossus 1 GPU facility.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"twin {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"twin {args.command}: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # run as a module: import ourselves, so CliError is one class
    from streams.cli.main import main as _main

    raise SystemExit(_main())
