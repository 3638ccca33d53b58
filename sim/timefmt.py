"""Durations ("90s", "10m", "1h30m") and instants (ISO 8601 UTC) for scenarios and the CLI.

Everything is converted to integer nanoseconds once, at load time; the simulator never parses
text on its hot path and never reads the wall clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

__all__ = ["NS_PER_S", "format_duration", "parse_duration_s", "parse_instant_ns"]

NS_PER_S: Final = 1_000_000_000

_UNITS: Final[dict[str, float]] = {
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|min|s|m|h|d)")


def parse_duration_s(text: str) -> float:
    """Seconds in ``text``: "90s", "10m", "1h", "1h30m", "2d", "250ms" or a bare number of seconds.

    Raises ValueError with a message that quotes the text and shows the accepted forms.
    """
    s = text.strip().lower().replace(" ", "")
    if not s:
        raise ValueError("empty duration: use e.g. 90s, 10m, 1h or 1h30m")
    try:
        value = float(s)
    except ValueError:
        pos = 0
        total = 0.0
        for match in _PART.finditer(s):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(s) or pos == 0:
            raise ValueError(
                f"bad duration {text!r}: use a number with a unit, e.g. 90s, 10m, 1h or 1h30m"
            ) from None
        value = total
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"bad duration {text!r}: must be a finite number of seconds >= 0")
    return value


def format_duration(seconds: float) -> str:
    """A short human form: 5400 -> "1h30m", 90 -> "1m30s", 0.5 -> "0.5s"."""
    if seconds < 60:
        return f"{seconds:g}s"
    whole = round(seconds)
    h, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
    return "".join(parts)


def parse_instant_ns(text: str) -> int:
    """Nanoseconds since the Unix epoch of an ISO 8601 instant ("2026-10-01T00:00:00Z").

    A date alone means midnight UTC; a time without an offset is taken as UTC.
    """
    s = text.strip()
    try:
        moment = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"bad instant {text!r}: use ISO 8601, e.g. 2026-10-01T00:00:00Z or 2026-10-01"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
