"""CLI flags backed by :class:`streams.settings.Settings` fields.

Each flag's help names its environment variable; a flag given on the command line wins over the
variable. Subcommands add the flags they use and build the one settings object with
:func:`settings_from_args`, which turns invalid values into a :class:`CliError` message::

    add_kafka_flags(parser)
    add_setting_flags(parser, "data_dir", "broker_port")
    settings = settings_from_args(args)
"""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from streams.cli.main import CliError
from streams.settings import Settings, env_var, load_settings

__all__ = ["add_kafka_flags", "add_setting_flag", "add_setting_flags", "settings_from_args"]

# Marks the argparse dests that carry settings fields.
_DEST_PREFIX = "setting__"


def _flag_for(field: str) -> str:
    return "--" + field.replace("_", "-")


def add_setting_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    field: str,
    *,
    text: str | None = None,
) -> None:
    """Add the flag ``--field-name`` for settings field ``field``."""
    info = Settings.model_fields.get(field)
    if info is None:
        raise ValueError(f"Settings has no field {field!r}")
    text = text or info.description or field
    secret = field == "sasl_password"
    parser.add_argument(
        _flag_for(field),
        dest=_DEST_PREFIX + field,
        default=None,
        metavar=field.upper() if not secret else "PASSWORD",
        help=f"{text} [env: {env_var(field)}]",
    )


def add_setting_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *fields: str
) -> None:
    """Add ``--field-name`` flags for several settings fields."""
    for field in fields:
        add_setting_flag(parser, field)


def add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every command that talks to Kafka takes."""
    group = parser.add_argument_group("Kafka")
    add_setting_flags(
        group,
        "kafka_bootstrap",
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "sasl_password",
        "ssl_cafile",
    )


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    """The settings: environment, then the flags given on the command line, then ``extra``."""
    overrides: dict[str, Any] = {
        dest.removeprefix(_DEST_PREFIX): value
        for dest, value in vars(args).items()
        if dest.startswith(_DEST_PREFIX) and value is not None
    }
    overrides.update({k: v for k, v in extra.items() if v is not None})
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        raise CliError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        if loc and isinstance(loc[0], str) and loc[0] in Settings.model_fields:
            field = loc[0]
            where = f"{_flag_for(field)} / {env_var(field)}"
            shown = "" if field == "sasl_password" else f" (got {error.get('input')!r})"
            problems.append(f"{where}: {error['msg']}{shown}")
        else:
            problems.append(str(error["msg"]).removeprefix("Value error, "))
    return "invalid settings: " + "; ".join(problems)
