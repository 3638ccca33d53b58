"""Rows as a terminal table, CSV or JSON: what ``twin query``, ``twin sql`` and ``twin compare``
print. CSV and JSON carry the values unrounded (JSON: NaN and infinities become null, times ISO
8601, blobs hex); the table rounds for reading."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from rich.console import Console
from rich.table import Table

__all__ = ["FORMATS", "format_cell", "json_value", "render", "to_csv", "to_json", "to_table"]

FORMATS: Final = ("table", "csv", "json")


def json_value(v: Any) -> Any:
    """A DuckDB value as plain JSON."""
    out: Any
    if isinstance(v, Decimal):
        v = float(v)
    if isinstance(v, float):
        out = v if math.isfinite(v) else None
    elif v is None or isinstance(v, bool | int | str):
        out = v
    elif isinstance(v, datetime | date | time):
        out = v.isoformat()
    elif isinstance(v, timedelta):
        out = v.total_seconds()
    elif isinstance(v, bytes | bytearray | memoryview):
        out = bytes(v).hex()
    elif isinstance(v, dict):
        out = {str(k): json_value(x) for k, x in v.items()}
    elif isinstance(v, list | tuple):
        out = [json_value(x) for x in v]
    else:
        out = str(v)
    return out


def to_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A JSON array of objects, one per row."""
    data = [{c: json_value(v) for c, v in zip(columns, r, strict=True)} for r in rows]
    return json.dumps(data, indent=2)


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """CSV with a header line; NULL is an empty field, floats at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if v is None else _csv_cell(v) for v in r])
    return buf.getvalue()


def _csv_cell(v: Any) -> Any:
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(v).hex()
    return v


def _format_number(f: float) -> str:
    a = abs(f)
    if not math.isfinite(f) or a == 0:
        text = "0" if a == 0 else str(f)
    elif f.is_integer() and a < 1e15:
        text = f"{int(f):,}"
    elif a >= 1e5:
        text = f"{f:,.0f}"
    elif a >= 1:
        text = f"{f:,.3f}"
    else:
        text = f"{f:.4g}"
    return text


def format_cell(v: Any) -> str:
    """A value rounded for a terminal table."""
    text: str
    if v is None:
        text = ""
    elif isinstance(v, bool):
        text = str(v).lower()
    elif isinstance(v, float | Decimal):
        text = _format_number(float(v))
    elif isinstance(v, datetime):
        text = v.isoformat(sep=" ")
    elif isinstance(v, bytes | bytearray | memoryview):
        text = f"<{len(bytes(v))} bytes>"
    else:
        text = str(v)
    return text


def to_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    max_rows: int | None = None,
) -> str:
    """A terminal table (rich). Numbers right-aligned; at most ``max_rows`` rows, then a note."""
    shown = rows if max_rows is None else rows[:max_rows]
    cells = [[format_cell(v) for v in r] for r in shown]
    numeric = [
        bool(shown)
        and all(
            r[k] is None or (isinstance(r[k], int | float | Decimal) and not isinstance(r[k], bool))
            for r in shown
        )
        for k in range(len(columns))
    ]
    table = Table(title=title)
    for name, right in zip(columns, numeric, strict=True):
        table.add_column(name, justify="right" if right else "left", overflow="fold")
    for r in cells:
        table.add_row(*r)
    natural = sum(max([len(c), *(len(r[k]) for r in cells)]) + 3 for k, c in enumerate(columns)) + 1
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else max(natural, 40)
    console = Console(file=io.StringIO(), width=width, force_terminal=False, color_system=None)
    console.print(table)
    out = str(console.file.getvalue())  # type: ignore[attr-defined]
    if len(shown) < len(rows):
        out += f"({len(rows) - len(shown)} more rows not shown: use --format csv or json)\n"
    return out


def render(
    fmt: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    max_rows: int | None = None,
) -> str:
    """``rows`` in ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "csv":
        return to_csv(columns, rows)
    if fmt == "json":
        return to_json(columns, rows) + "\n"
    if fmt == "table":
        return to_table(columns, rows, title=title, max_rows=max_rows)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
