"""The binary columnar encoding of ``gpu_telemetry`` (docs/EVENTS.md, "Binary gpu_telemetry").

One message carries one rack's (or node's) GPUs as little-endian, fixed-dtype columns and K >= 1
consecutive readings of them (an exporter that scrapes every second and pushes every K seconds).
It is the same event as K JSON v1 ``gpu_telemetry`` messages: reading ``k`` is the v1 event with
``seq = seq0 + k``, ``ts_ns = ts_ns[k]``, ``interval_ns = interval_ns[k]`` and the k-th slice of
every per-reading column; ``gpu_index``, ``gpu_uuid``, ``jobs`` and the scalars are shared.

Layout (all integers little-endian, no padding; every section starts at a multiple of its item
size because the sections before it have sizes that are multiples of 8, then of 4)::

    offset  size      type          field
    0       4         bytes         magic b"\\x89TGT" (0x89 never starts JSON or UTF-8 text)
    4       1         uint8         layout version: 1
    5       1         uint8         event type code: 1 = gpu_telemetry
    6       2         uint16        schema_version of the columns: 1
    8       8         int64         seq: sequence number of reading 0 (reading k: seq + k)
    16      4         uint32        n: GPUs (column length), 1..1024
    20      4         uint32        K: readings, >= 1
    24      4         uint32        J: entries of jobs
    28      4         uint32        reserved, 0
    32      8K        int64[K]      ts_ns per reading (end of its interval), strictly increasing
            8K        int64[K]      interval_ns per reading
            8Kn       float64[K,n]  nvlink_bytes
            4n        int32[n]      gpu_index
            32Kn      float32[8,K,n] power_w, temp_c, memory_temp_c, sm_clock_mhz,
                                    gpu_util_pct, sm_active, tensor_active, dram_active
            4Kn       int32[K,n]    xid
            4Kn       int32[K,n]    job_slot
            4(3+J+n)  uint32[3+J+n] string end offsets into the string bytes (non-decreasing)
            S         bytes         UTF-8 strings back to back: source_id, rack_id, gpu_model,
                                    jobs[0..J), gpu_uuid[0..n); S = the last end offset

The message ends exactly there. :func:`decode_binary` is the reference decoder: it checks the
layout (the reasons name the part that is wrong), builds the K equivalent JSON v1 events and
validates each with :func:`schemas.codec.decode`, so every value rule and its reason is the
pydantic models'. With K > 1 a reason names the reading: ``readings[2].power_w: ...``.
:mod:`schemas.hotpath` decodes the good messages with ``np.frombuffer`` and vectorized checks and
falls back to this function for anything it is not sure about.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import numpy as np
import numpy.typing as npt
import pydantic_core

from schemas.codec import decode
from schemas.errors import EventError
from schemas.telemetry import FLOAT_COLUMNS, GpuTelemetry

__all__ = [
    "F32_COLUMNS",
    "HEADER",
    "LAYOUT_VERSION",
    "MAGIC",
    "TELEMETRY_CODE",
    "BinaryLayout",
    "decode_binary",
    "decode_readings",
    "encode_binary",
    "encode_events_binary",
    "is_binary",
    "parse_layout",
]

MAGIC: Final = b"\x89TGT"
LAYOUT_VERSION: Final = 1
TELEMETRY_CODE: Final = 1
#: magic, layout, event type, schema_version, seq, n, K, J, reserved
HEADER: Final = struct.Struct("<4sBBHqIIII")
#: The float32 columns, in wire order (the float columns but nvlink_bytes, which is float64).
F32_COLUMNS: Final[tuple[str, ...]] = FLOAT_COLUMNS[:8]
if FLOAT_COLUMNS[8] != "nvlink_bytes":  # pragma: no cover - guards an edit of the column order
    raise ImportError("schemas.binary: FLOAT_COLUMNS changed; update the binary layout")
_EXPECT: Final = ("gpu_telemetry",)
_STRING_NAMES: Final = ("source_id", "rack_id", "gpu_model")


def is_binary(value: object) -> bool:
    """Does ``value`` claim to be a binary message (starts with :data:`MAGIC`)?"""
    return isinstance(value, bytes | bytearray) and bytes(value[:4]) == MAGIC


@dataclass(frozen=True, slots=True)
class BinaryLayout:
    """Where the sections of one message are (byte offsets), with the header's fields."""

    seq: int
    n: int
    k: int
    j: int
    ts: int
    interval: int
    nvlink: int
    gpu_index: int
    f32: int
    xid: int
    job_slot: int
    ends: int
    strings: int
    size: int


def _sections(n: int, k: int, j: int) -> tuple[int, ...]:
    """Offsets of the sections after the header, and where the string bytes start."""
    ts = HEADER.size
    interval = ts + 8 * k
    nvlink = interval + 8 * k
    gpu_index = nvlink + 8 * k * n
    f32 = gpu_index + 4 * n
    xid = f32 + 4 * 8 * k * n
    job_slot = xid + 4 * k * n
    ends = job_slot + 4 * k * n
    strings = ends + 4 * (3 + j + n)
    return ts, interval, nvlink, gpu_index, f32, xid, job_slot, ends, strings


def parse_layout(value: bytes) -> BinaryLayout:
    """Check the header and the message's length; raise :class:`EventError` naming what is
    wrong (never anything else). The values inside are not checked here."""
    if len(value) < HEADER.size:
        raise EventError(
            f"binary: truncated header: {len(value)} bytes, the header has {HEADER.size}"
        )
    magic, layout, code, version, seq, n, k, j, reserved = HEADER.unpack_from(value)
    if magic != MAGIC:
        raise EventError(f"binary: magic must be {MAGIC!r}, got {magic!r}")
    if layout != LAYOUT_VERSION:
        raise EventError(
            f"layout: unsupported binary layout version {layout} (supported: {LAYOUT_VERSION})"
        )
    if code != TELEMETRY_CODE:
        raise EventError(
            f"event_type: unknown binary event type code {code} "
            f"(known: {TELEMETRY_CODE} = gpu_telemetry)"
        )
    if version != 1:
        raise EventError(f"schema_version: binary gpu_telemetry carries version 1, got {version}")
    if reserved != 0:
        raise EventError(f"reserved: header bytes 28-31 must be 0, got {reserved}")
    if k < 1:
        raise EventError("n_readings: a message carries at least one reading, got 0")
    ts, interval, nvlink, gpu_index, f32, xid, job_slot, ends, strings = _sections(n, k, j)
    if len(value) < strings:
        raise EventError(
            f"binary: truncated: {len(value)} bytes, but n_gpus {n}, n_readings {k} and "
            f"n_jobs {j} need {strings} bytes before the strings"
        )
    size = strings + int.from_bytes(value[strings - 4 : strings], "little")
    if len(value) != size:
        what = "truncated" if len(value) < size else "trailing bytes"
        raise EventError(
            f"binary: {what}: {len(value)} bytes, the string offsets say the message ends at {size}"
        )
    return BinaryLayout(
        seq, n, k, j, ts, interval, nvlink, gpu_index, f32, xid, job_slot, ends, strings, size
    )


def _string_name(i: int, j: int) -> str:
    if i < 3:
        return _STRING_NAMES[i]
    return f"jobs[{i - 3}]" if i < 3 + j else f"gpu_uuid[{i - 3 - j}]"


def _strings(value: bytes, lay: BinaryLayout) -> list[str]:
    ends = np.frombuffer(value, "<u4", 3 + lay.j + lay.n, lay.ends).tolist()
    out: list[str] = []
    start = 0
    for i, end in enumerate(ends):
        if end < start:
            raise EventError(
                f"strings: end offset {end} of {_string_name(i, lay.j)} is before its start "
                f"{start} (offsets must not decrease)"
            )
        raw = value[lay.strings + start : lay.strings + end]
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise EventError(f"{_string_name(i, lay.j)}: not valid UTF-8 ({exc.reason})") from None
        start = end
    return out


def _column(value: bytes, dtype: str, count: int, offset: int) -> npt.NDArray[Any]:
    return np.frombuffer(value, dtype, count, offset)


def _json_readings(value: bytes, lay: BinaryLayout) -> list[bytes]:
    """The K equivalent JSON v1 events (NaN and infinities written as JSON literals, so the
    models give their usual "finite number" reason)."""
    strings = _strings(value, lay)
    source_id, rack_id, gpu_model = strings[:3]
    jobs = strings[3 : 3 + lay.j]
    uuids = strings[3 + lay.j :]
    n, k = lay.n, lay.k
    ts = _column(value, "<i8", k, lay.ts).tolist()
    interval = _column(value, "<i8", k, lay.interval).tolist()
    nvlink = _column(value, "<f8", k * n, lay.nvlink).reshape(k, n)
    gpu_index = _column(value, "<i4", n, lay.gpu_index).tolist()
    f32 = _column(value, "<f4", 8 * k * n, lay.f32).reshape(8, k, n)
    xid = _column(value, "<i4", k * n, lay.xid).reshape(k, n)
    slot = _column(value, "<i4", k * n, lay.job_slot).reshape(k, n)
    out: list[bytes] = []
    for r in range(k):
        event: dict[str, Any] = {
            "event_type": "gpu_telemetry",
            "schema_version": 1,
            "ts_ns": ts[r],
            "source_id": source_id,
            "seq": lay.seq + r,
            "rack_id": rack_id,
            "gpu_model": gpu_model,
            "interval_ns": interval[r],
            "gpu_index": gpu_index,
            "gpu_uuid": uuids,
        }
        for c, name in enumerate(F32_COLUMNS):
            event[name] = f32[c, r].astype(np.float64).tolist()
        event["nvlink_bytes"] = nvlink[r].tolist()
        event["xid"] = xid[r].tolist()
        event["job_slot"] = slot[r].tolist()
        event["jobs"] = jobs
        out.append(bytes(pydantic_core.to_json(event, inf_nan_mode="constants")))
    return out


def _prefixed(reason: str, r: int) -> str:
    return "\n".join(
        line if line.startswith("... and") else f"readings[{r}].{line}"
        for line in reason.split("\n")
    )


def decode_binary(value: bytes) -> list[GpuTelemetry]:
    """The reference decoder: one binary message -> its K validated v1 events, in reading
    order. Raises :class:`EventError` (and nothing else) with a reason naming the field and
    the rule; for K > 1 the field is prefixed with ``readings[k].``."""
    lay = parse_layout(value)
    events: list[GpuTelemetry] = []
    for r, raw in enumerate(_json_readings(value, lay)):
        try:
            event = decode(raw, _EXPECT)
        except EventError as exc:
            raise EventError(exc.reason if lay.k == 1 else _prefixed(exc.reason, r)) from None
        events.append(cast(GpuTelemetry, event))  # decode(expect=...) ensures the type
    for r in range(1, len(events)):
        if events[r].ts_ns <= events[r - 1].ts_ns:
            raise EventError(
                f"ts_ns: readings must be in strictly increasing time order; reading {r} "
                f"({events[r].ts_ns}) is not after reading {r - 1} ({events[r - 1].ts_ns})"
            )
    return events


def decode_readings(
    value: bytes | bytearray | memoryview | None, expect: Collection[str] = ()
) -> list[Any]:
    """Any Kafka value -> its events: a binary message gives its K readings, anything else
    goes to :func:`schemas.codec.decode` (one event). Raises :class:`EventError`."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if is_binary(value):
        assert isinstance(value, bytes | bytearray)
        if expect and "gpu_telemetry" not in expect:
            raise EventError(
                "event_type: 'gpu_telemetry' does not belong here "
                f"(expected {', '.join(sorted(expect))})"
            )
        return list(decode_binary(bytes(value)))
    return [decode(value, expect)]


# ---------------------------------------------------------------------------------- encoder
def encode_binary(
    *,
    source_id: str,
    seq: int,
    rack_id: str,
    gpu_model: str,
    gpu_index: Sequence[int] | npt.NDArray[np.integer],
    gpu_uuid: Sequence[str],
    jobs: Sequence[str],
    ts_ns: Sequence[int] | npt.NDArray[np.integer],
    interval_ns: Sequence[int] | npt.NDArray[np.integer],
    columns: dict[str, Any],
) -> bytes:
    """One binary message. ``columns``: every float column of
    :data:`~schemas.telemetry.FLOAT_COLUMNS` plus ``xid`` and ``job_slot``, each shaped
    ``(K, n)`` (a 1-D column of length n is one reading). Values are written as they are (cast
    to the wire dtype), not checked: the decoder is the judge."""
    k = len(ts_ns)
    n = len(gpu_index)
    if len(interval_ns) != k:
        raise ValueError("ts_ns and interval_ns need one entry per reading")

    def col(name: str, dtype: str) -> bytes:
        a = np.asarray(columns[name], dtype=dtype)
        if a.shape not in ((k, n), (n,) if k == 1 else (k, n)):
            raise ValueError(f"{name}: expected shape ({k}, {n}), got {a.shape}")
        return np.ascontiguousarray(a).tobytes()

    texts = [source_id, rack_id, gpu_model, *jobs, *gpu_uuid]
    encoded = [t.encode("utf-8") for t in texts]
    ends = np.cumsum([len(b) for b in encoded], dtype=np.int64)
    header = HEADER.pack(MAGIC, LAYOUT_VERSION, TELEMETRY_CODE, 1, seq, n, k, len(jobs), 0)
    return b"".join(
        (
            header,
            np.asarray(ts_ns, "<i8").tobytes(),
            np.asarray(interval_ns, "<i8").tobytes(),
            col("nvlink_bytes", "<f8"),
            np.asarray(gpu_index, "<i4").tobytes(),
            *(col(name, "<f4") for name in F32_COLUMNS),
            col("xid", "<i4"),
            col("job_slot", "<i4"),
            ends.astype("<u4").tobytes(),
            *encoded,
        )
    )


def encode_events_binary(events: Sequence[GpuTelemetry | dict[str, Any]]) -> bytes:
    """K consecutive v1 readings of one exporter (same source, rack, model, GPUs, UUIDs; seqs
    consecutive) as one binary message. Their ``jobs`` dictionaries are merged in order of
    first appearance and each reading's ``job_slot`` remapped to it."""
    if not events:
        raise ValueError("no readings")
    rows = [e.model_dump() if isinstance(e, GpuTelemetry) else e for e in events]
    first = rows[0]
    for r, row in enumerate(rows):
        for name in ("source_id", "rack_id", "gpu_model", "gpu_index", "gpu_uuid"):
            if row[name] != first[name]:
                raise ValueError(f"reading {r}: {name} differs from reading 0")
        if row["seq"] != first["seq"] + r:
            raise ValueError(f"reading {r}: seq must be {first['seq'] + r}, got {row['seq']}")
    jobs: dict[str, int] = {}
    slots = []
    for row in rows:
        remap = [jobs.setdefault(j, len(jobs)) for j in row["jobs"]]
        slots.append([remap[s] if 0 <= s < len(remap) else s for s in row["job_slot"]])
    columns: dict[str, Any] = {name: [row[name] for row in rows] for name in FLOAT_COLUMNS}
    columns["xid"] = [row["xid"] for row in rows]
    columns["job_slot"] = slots
    return encode_binary(
        source_id=first["source_id"],
        seq=first["seq"],
        rack_id=first["rack_id"],
        gpu_model=first["gpu_model"],
        gpu_index=first["gpu_index"],
        gpu_uuid=first["gpu_uuid"],
        jobs=list(jobs),
        ts_ns=[row["ts_ns"] for row in rows],
        interval_ns=[row["interval_ns"] for row in rows],
        columns=columns,
    )
