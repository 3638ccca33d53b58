"""The one exception the decoder raises, and how validation errors become its reason."""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

__all__ = ["EventError", "format_validation_error"]

_MAX_LINES: Final = 10
_MAX_INPUT_REPR: Final = 60


class EventError(ValueError):
    """An event that cannot be accepted. ``reason`` (also the message) says which field broke
    which rule, one ``"field: rule"`` line per problem; it goes to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type[EventError], tuple[str]]:
        return (type(self), (self.reason,))


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    if len(text) > _MAX_INPUT_REPR:
        text = text[: _MAX_INPUT_REPR - 3] + "..."
    return text


def format_validation_error(exc: ValidationError) -> str:
    """One ``"field[i].sub: rule (got value)"`` line per error, at most ten.

    Errors raised by the models' own cross-field and column rules already start with the field
    name and carry the offending index and value; they are passed through unchanged.
    """
    lines: list[str] = []
    errors = exc.errors(include_url=False, include_context=False)
    for err in errors[:_MAX_LINES]:
        loc = _loc(tuple(err["loc"]))
        msg = str(err["msg"])
        if err["type"] == "event_rule" and not loc:
            lines.append(msg)
        elif err["type"] == "missing":
            lines.append(f"{loc}: field required")
        elif err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown field (extra fields are forbidden)")
        elif loc:
            value = err.get("input")
            got = "" if isinstance(value, dict | list) else f" (got {_short(value)})"
            lines.append(f"{loc}: {msg}{got}")
        else:
            lines.append(msg)
    if len(errors) > _MAX_LINES:
        lines.append(f"... and {len(errors) - _MAX_LINES} more errors")
    return "\n".join(lines)
