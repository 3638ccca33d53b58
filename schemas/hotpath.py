"""The ``facility.gpu`` hot path: raw Kafka values -> one :class:`TelemetryBatch` + rejects.

:func:`decode_telemetry` gives the same result as decoding every value with
:func:`schemas.codec.decode` and converting the good ones with
:func:`schemas.columnar.telemetry_batch`, at about half the cost per message: it parses with
orjson, checks the scalars with a few type tests, packs each message's columns into one buffer
with ``struct`` (which also rejects non-numbers), and checks every range of the whole batch at
once with numpy. No pydantic object is built for a good message.

Binary messages (:mod:`schemas.binary`, told apart by their magic bytes) skip the parse: the
header is one ``struct`` unpack, every column an ``np.frombuffer`` view, the string section
(ids, model, jobs, UUIDs, the same in message after message of one exporter) is checked once
and cached by its bytes, and the same batch-wide numpy range checks run on the columns. A
binary message with K readings becomes K messages of the batch.

The fast path may only *accept*. Anything it is not sure about (old versions, JSON booleans,
a failed range check, unknown keys, a broken binary layout ...) goes through
:func:`schemas.codec.decode` (JSON) or :func:`schemas.binary.decode_binary` (binary: the K
equivalent JSON events through ``decode``), whose pydantic models are the authority on both
acceptance and the reason. The unit tests check on random and mutated messages that both
paths agree.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, cast

import numpy as np
import numpy.typing as npt
import orjson

from schemas.binary import HEADER, MAGIC, decode_readings
from schemas.columnar import assemble_telemetry, empty_telemetry_batch
from schemas.envelope import INT64_MAX
from schemas.errors import EventError
from schemas.telemetry import (
    FLOAT_COLUMNS,
    INT_COLUMNS,
    MAX_GPUS_PER_MESSAGE,
    RANGES,
    GpuTelemetry,
    numeric_columns,
    pack_columns,
    power_limit_w,
    split_block,
)
from twin.batches import TelemetryBatch
from twin.gpus import GPU_MODELS

__all__ = ["TelemetryDecoded", "decode_telemetry"]

_KEYS: Final = frozenset(GpuTelemetry.model_fields)
_POWER_LIMIT: Final = {name: power_limit_w(name) for name in GPU_MODELS}
_EXPECT: Final = ("gpu_telemetry",)


class TelemetryDecoded(NamedTuple):
    """The good messages as one batch (in input order) and the bad ones as
    ``(index into the input, reason)``; ``inputs[m]`` is the input index of the batch's message
    ``m`` (a binary message with K readings gives K messages)."""

    batch: TelemetryBatch
    errors: list[tuple[int, str]]
    inputs: npt.NDArray[np.intp]


class _Msg(NamedTuple):
    source_id: str
    seq: int
    ts_ns: int
    interval_ns: int
    n: int
    jobs: list[str]
    power_limit_w: float


def _load(value: Any) -> dict[str, Any] | None:
    """The JSON object if it has exactly the telemetry keys, else None."""
    if type(value) is not bytes or b"true" in value or b"false" in value:
        return None  # JSON booleans would pass struct as numbers: leave them to pydantic
    try:
        d = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return d if type(d) is dict and d.keys() == _KEYS else None


def _scalars_ok(d: dict[str, Any]) -> bool:
    ts_ns, seq, interval_ns, jobs = d["ts_ns"], d["seq"], d["interval_ns"], d["jobs"]
    return bool(
        d["event_type"] == "gpu_telemetry"
        and type(d["schema_version"]) is int
        and d["schema_version"] == 1
        and type(ts_ns) is int
        and 0 <= ts_ns <= INT64_MAX
        and type(seq) is int
        and 0 <= seq <= INT64_MAX
        and type(interval_ns) is int
        and 0 < interval_ns <= INT64_MAX
        and type(d["source_id"]) is str
        and d["source_id"]
        and type(d["rack_id"]) is str
        and d["rack_id"]
        and type(d["gpu_model"]) is str
        and d["gpu_model"] in _POWER_LIMIT
        and type(jobs) is list
        and all(type(j) is str and j for j in jobs)
    )


def _parse(value: Any) -> tuple[_Msg, npt.NDArray[np.int64]] | None:
    """The message and its ``(12, n)`` packed block (int64 bits: the float rows hold float64
    bit patterns), or None if the fast path is not sure."""
    d = _load(value)
    if d is None or not _scalars_ok(d):
        return None
    cols = (
        d["gpu_index"],
        d["power_w"],
        d["temp_c"],
        d["memory_temp_c"],
        d["sm_clock_mhz"],
        d["gpu_util_pct"],
        d["sm_active"],
        d["tensor_active"],
        d["dram_active"],
        d["nvlink_bytes"],
        d["xid"],
        d["job_slot"],
    )
    uuid = d["gpu_uuid"]
    try:
        lengths = set(map(len, cols))
        n = len(uuid)
        if type(uuid) is not list or lengths != {n} or not 1 <= n <= MAX_GPUS_PER_MESSAGE:
            return None
        "".join(uuid)  # TypeError unless every entry is a string
        # A column that is not a list (a string, an object) unpacks to strings: pack refuses.
        block = pack_columns(cols, n)
    except (TypeError, struct.error, OverflowError):
        return None
    limit = _POWER_LIMIT[d["gpu_model"]]
    msg = _Msg(d["source_id"], d["seq"], d["ts_ns"], d["interval_ns"], n, d["jobs"], limit)
    return msg, block


_FLOAT_MAX: Final = float(np.finfo(np.float64).max)  # so an infinity fails "no upper bound"


def _hi(name: str, unbounded: float) -> float:
    hi = RANGES[name].hi
    return unbounded if hi is None else hi


_F_LO: Final = np.array([RANGES[c].lo for c in FLOAT_COLUMNS])[:, None]
_F_HI: Final = np.array([_hi(c, _FLOAT_MAX) for c in FLOAT_COLUMNS])[:, None]
_I_LO: Final = np.array([RANGES[c].lo for c in INT_COLUMNS], dtype=np.int64)[:, None]
_I_HI: Final = np.array([_hi(c, INT64_MAX) for c in INT_COLUMNS], dtype=np.int64)[:, None]
_POWER: Final = FLOAT_COLUMNS.index("power_w")
_GPU: Final = INT_COLUMNS.index("gpu_index")
_SLOT: Final = INT_COLUMNS.index("job_slot")


def _bad_messages(
    floats: npt.NDArray[np.float64],
    ints: npt.NDArray[np.int64],
    msg: npt.NDArray[np.intp],
    power_limit: npt.NDArray[np.float64],
    slot_limit: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Per message: does any sample break a range (NaN and infinities fail every range), or
    does a gpu_index repeat within the message?"""
    ok_f = (floats >= _F_LO) & (floats <= _F_HI)
    ok_f[_POWER] &= floats[_POWER] <= power_limit[msg]
    ok_i = (ints >= _I_LO) & (ints <= _I_HI)
    ok_i[_SLOT] &= ints[_SLOT] <= slot_limit[msg]
    bad = np.zeros(power_limit.shape[0], dtype=np.bool_)
    bad[msg[~(ok_f.all(axis=0) & ok_i.all(axis=0))]] = True
    gpu = np.clip(ints[_GPU], 0, 2**31)  # out-of-range indices already mark their message
    key = np.sort((msg.astype(np.int64) << 32) | gpu)
    bad[key[1:][key[1:] == key[:-1]] >> 32] = True
    return bad


class _Bin(NamedTuple):
    """A binary message the fast path parsed (views into its bytes)."""

    source_id: str
    seq: int
    n: int
    k: int
    jobs: list[str]
    power_limit_w: float
    ts: npt.NDArray[np.int64]
    interval: npt.NDArray[np.int64]
    nvlink: npt.NDArray[np.float64]
    gpu_index: npt.NDArray[np.int32]
    f32: npt.NDArray[np.float32]
    xid: npt.NDArray[np.int32]
    slot: npt.NDArray[np.int32]


def _strings_ok(blob: bytes, ends: npt.NDArray[np.uint32]) -> bool:
    """Offsets that never decrease, valid UTF-8, and no string boundary inside a multi-byte
    character (then every string is valid UTF-8 on its own)."""
    if (ends[1:] < ends[:-1]).any():
        return False
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError:
        return False
    cut = ends[ends < len(blob)]
    return not (cut.size and ((np.frombuffer(blob, np.uint8)[cut] & 0xC0) == 0x80).any())


_Strings = tuple[str, list[str], float] | None
#: A rack exporter sends the same strings section (ids, model, jobs, UUIDs) in message after
#: message: its checked contents are cached by its bytes (cleared past a byte budget, so odd
#: input cannot grow it without bound; 3,406 racks of 64 GPUs take ~10 MB).
_STRINGS: dict[tuple[int, int, bytes], _Strings] = {}
_STRINGS_BUDGET: Final = 64 << 20
_strings_bytes = 0


def _strings(tail: bytes, n: int, j: int) -> _Strings:
    """``(source_id, jobs, power limit)`` from a message's string offsets + bytes, or None if
    the fast path is not sure."""
    key = (n, j, tail)
    if key in _STRINGS:
        return _STRINGS[key]
    count = 3 + j + n
    ends = np.frombuffer(tail, "<u4", count)
    blob = tail[4 * count :]
    out: _Strings = None
    if _strings_ok(blob, ends):
        head = ends[: 3 + j].tolist()
        texts = [blob[a:b].decode("utf-8") for a, b in zip([0, *head[:-1]], head, strict=True)]
        source_id, rack_id, gpu_model = texts[:3]
        jobs = texts[3:]
        limit = _POWER_LIMIT.get(gpu_model)
        if source_id and rack_id and limit is not None and all(jobs):
            out = (source_id, jobs, limit)
    global _strings_bytes  # noqa: PLW0603 - the cache's size, beside the cache
    if _strings_bytes + len(tail) > _STRINGS_BUDGET:
        _STRINGS.clear()
        _strings_bytes = 0
    _STRINGS[key] = out
    _strings_bytes += len(tail)
    return out


_HEAD: Final = HEADER.size


def _parse_binary(value: bytes) -> _Bin | None:
    """A binary message's strings checked and its sections as views, or None if the fast
    path is not sure (the layout, a string, a scalar). Mirrors
    :func:`schemas.binary.parse_layout`."""
    if len(value) < _HEAD:
        return None
    _magic, layout, code, version, seq, n, k, j, reserved = HEADER.unpack_from(value)
    if (
        layout != 1
        or code != 1
        or version != 1
        or reserved
        or not 1 <= n <= MAX_GPUS_PER_MESSAGE
        or k < 1
        or seq < 0
        or seq > INT64_MAX - (k - 1)
    ):
        return None
    kn = k * n
    words8 = 2 * k + kn  # ts, interval, nvlink_bytes
    words4 = n + 10 * kn  # gpu_index, 8 float32 columns, xid, job_slot
    ends_at = _HEAD + 8 * words8 + 4 * words4
    strings_at = ends_at + 4 * (3 + j + n)
    if len(value) < strings_at:
        return None
    if len(value) != strings_at + int.from_bytes(value[strings_at - 4 : strings_at], "little"):
        return None
    text = _strings(value[ends_at:], n, j)
    if text is None:
        return None
    w8 = np.frombuffer(value, "<i8", words8, _HEAD)
    w4 = np.frombuffer(value, "<i4", words4, _HEAD + 8 * words8)
    f32_end = n + 8 * kn
    return _Bin(
        text[0],
        seq,
        n,
        k,
        text[1],
        text[2],
        w8[:k],
        w8[k : 2 * k],
        w8[2 * k :].view("<f8"),
        w4[:n],
        w4[n:f32_end].view("<f4").reshape(8, kn),
        w4[f32_end : f32_end + kn],
        w4[f32_end + kn :],
    )


def _bad_binary(bins: list[_Bin]) -> npt.NDArray[np.bool_]:
    """Per binary message: does any value break a rule (the fast path's vectorized checks)?"""
    m = len(bins)
    ks = np.array([b.k for b in bins], np.intp)
    kn = np.array([b.k * b.n for b in bins], np.intp)
    ns = np.array([b.n for b in bins], np.intp)
    msg_r = np.repeat(np.arange(m), ks)
    ts = np.concatenate([b.ts for b in bins])
    interval = np.concatenate([b.interval for b in bins])
    bad = np.zeros(m, np.bool_)
    bad[msg_r[(ts < 0) | (interval <= 0)]] = True
    later = ts[1:] <= ts[:-1]
    same = msg_r[1:] == msg_r[:-1]
    bad[msg_r[1:][later & same]] = True
    msg_s = np.repeat(np.arange(m), kn)
    f32 = np.concatenate([b.f32 for b in bins], axis=1)
    ok = ((f32 >= _F_LO[:8]) & (f32 <= _F_HI[:8])).all(axis=0)
    power_limit = np.array([b.power_limit_w for b in bins])
    ok &= f32[_POWER] <= power_limit[msg_s]
    nvlink = np.concatenate([b.nvlink for b in bins])
    ok &= (nvlink >= _F_LO[8, 0]) & (nvlink <= _F_HI[8, 0])
    ok &= np.concatenate([b.xid for b in bins]) >= _I_LO[1, 0]
    slot = np.concatenate([b.slot for b in bins])
    slot_limit = np.array([len(b.jobs) - 1 for b in bins], np.int64)
    ok &= (slot >= _I_LO[2, 0]) & (slot <= slot_limit[msg_s])
    bad[msg_s[~ok]] = True
    gpu = np.concatenate([b.gpu_index for b in bins]).astype(np.int64)
    msg_g = np.repeat(np.arange(m), ns)
    bad[msg_g[gpu < 0]] = True
    key = np.sort((msg_g.astype(np.int64) << 32) | np.clip(gpu, 0, None))
    bad[key[1:][key[1:] == key[:-1]] >> 32] = True
    return bad


class _Piece(NamedTuple):
    """One accepted input message: ``k`` readings of ``n`` GPUs each, whose samples are
    columns ``start:start + k * n`` of the group arrays (see :func:`_gather`)."""

    pos: int
    source_id: str
    seq: int
    k: int
    n: int
    ts: list[int]
    interval: list[int]
    jobs: list[str]
    start: int


class _Cols(NamedTuple):
    """Samples' columns in the batch's dtypes."""

    f32: npt.NDArray[np.float32]  # (8, N), F32 columns
    nvlink: npt.NDArray[np.float64]  # (N,)
    ints: npt.NDArray[np.int32]  # (3, N), INT_COLUMNS order


def _cols_from_block(floats: npt.NDArray[np.float64], ints: npt.NDArray[np.int64]) -> _Cols:
    """The JSON path's float64 / int64 rows, cast as :func:`assemble_telemetry` casts them."""
    return _Cols(
        floats[:8].astype(np.float32),
        np.array(floats[8], dtype=np.float64),
        ints.astype(np.int32),
    )


def decode_telemetry(values: Sequence[bytes | None]) -> TelemetryDecoded:
    """Decode a batch of ``facility.gpu`` values (JSON or binary) into one batch plus
    ``(index, reason)`` rejects (the same rejects and reasons :func:`schemas.codec.decode`
    and :func:`schemas.binary.decode_binary` give). A binary message with K readings becomes K
    messages of the batch, in reading order, at its place in the input order."""
    good: list[tuple[int, _Msg]] = []
    blocks: list[npt.NDArray[np.int64]] = []
    bins: list[tuple[int, _Bin]] = []
    suspects: list[int] = []
    for i, value in enumerate(values):
        if type(value) is bytes and value[:4] == MAGIC:
            b = _parse_binary(value)
            if b is None:
                suspects.append(i)
            else:
                bins.append((i, b))
            continue
        parsed = _parse(value)
        if parsed is None:
            suspects.append(i)
        else:
            good.append((i, parsed[0]))
            blocks.append(parsed[1])

    floats = np.empty((len(FLOAT_COLUMNS), 0))
    ints = np.empty((len(INT_COLUMNS), 0), dtype=np.int64)
    if good:
        floats, ints = split_block(np.concatenate(blocks, axis=1))
        msg = np.repeat(np.arange(len(good)), [g.n for _, g in good])
        power_limit = np.array([g.power_limit_w for _, g in good])
        slot_limit = np.array([len(g.jobs) - 1 for _, g in good], dtype=np.int64)
        bad = _bad_messages(floats, ints, msg, power_limit, slot_limit)
        if bad.any():  # the model will say why
            suspects.extend(good[k][0] for k in np.flatnonzero(bad).tolist())
            good = [g for g, b in zip(good, bad.tolist(), strict=True) if not b]
            keep = ~bad[msg]
            floats, ints = floats[:, keep], ints[:, keep]
    if bins:
        bad = _bad_binary([b for _, b in bins])
        if bad.any():
            suspects.extend(bins[k][0] for k in np.flatnonzero(bad).tolist())
            bins = [b for b, x in zip(bins, bad.tolist(), strict=True) if not x]

    errors: list[tuple[int, str]] = []
    rescued: list[tuple[int, list[GpuTelemetry]]] = []
    for i in sorted(suspects):
        try:
            events = decode_readings(values[i], _EXPECT)
        except EventError as exc:
            errors.append((i, exc.reason))
            continue
        rescued.append((i, cast(list[GpuTelemetry], events)))  # expect= ensures the type

    if not good and not bins and not rescued:
        return TelemetryDecoded(empty_telemetry_batch(), errors, np.zeros(0, np.intp))
    if not bins and not rescued:  # JSON only, the fast path took all: as before
        batch = _assemble([g for _, g in good], floats, ints)
        return TelemetryDecoded(batch, errors, np.array([i for i, _ in good], np.intp))
    return _assemble_pieces(
        good=good, floats=floats, ints=ints, bins=bins, rescued=rescued, errors=errors
    )


def _assemble_pieces(
    *,
    good: list[tuple[int, _Msg]],
    floats: npt.NDArray[np.float64],
    ints: npt.NDArray[np.int64],
    bins: list[tuple[int, _Bin]],
    rescued: list[tuple[int, list[GpuTelemetry]]],
    errors: list[tuple[int, str]],
) -> TelemetryDecoded:
    """Merge the JSON fast path's messages, the binary ones and the rescued ones, in input
    order, into one batch."""
    pieces: list[_Piece] = []
    groups: list[_Cols] = []
    at = 0
    if good:
        groups.append(_cols_from_block(floats, ints))
        for i, g in good:
            pieces.append(
                _Piece(i, g.source_id, g.seq, 1, g.n, [g.ts_ns], [g.interval_ns], g.jobs, at)
            )
            at += g.n
    if bins:
        groups.append(
            _Cols(
                np.concatenate([b.f32 for _, b in bins], axis=1),
                np.concatenate([b.nvlink for _, b in bins]),
                np.stack(
                    [
                        _tiled_gpu_index([b for _, b in bins]),
                        np.concatenate([b.xid for _, b in bins]),
                        np.concatenate([b.slot for _, b in bins]),
                    ]
                ),
            )
        )
        for i, b in bins:
            pieces.append(
                _Piece(
                    i, b.source_id, b.seq, b.k, b.n, b.ts.tolist(), b.interval.tolist(), b.jobs, at
                )
            )
            at += b.k * b.n
    for i, events in rescued:
        e0 = events[0]
        n = len(e0.gpu_index)
        blocks = [pack_columns(numeric_columns(e), n) for e in events]
        groups.append(_cols_from_block(*split_block(np.concatenate(blocks, axis=1))))
        pieces.append(
            _Piece(
                i,
                e0.source_id,
                e0.seq,
                len(events),
                n,
                [e.ts_ns for e in events],
                [e.interval_ns for e in events],
                e0.jobs,
                at,
            )
        )
        at += len(events) * n
    cols = _Cols(
        np.concatenate([g.f32 for g in groups], axis=1),
        np.concatenate([g.nvlink for g in groups]),
        np.concatenate([g.ints for g in groups], axis=1),
    )
    pieces.sort(key=lambda p: p.pos)
    lens = np.array([p.k * p.n for p in pieces], np.int64)
    starts = np.array([p.start for p in pieces], np.int64)
    new_off = np.zeros(len(pieces) + 1, np.int64)
    np.cumsum(lens, out=new_off[1:])
    if not np.array_equal(starts, new_off[:-1]):  # not in input order yet: gather
        rows = np.repeat(starts - new_off[:-1], lens) + np.arange(int(new_off[-1]))
        cols = _Cols(cols.f32[:, rows], cols.nvlink[rows], cols.ints[:, rows])
    return TelemetryDecoded(
        _assemble_readings(pieces, cols, lens),
        errors,
        np.repeat([p.pos for p in pieces], [p.k for p in pieces]),
    )


def _tiled_gpu_index(bins: list[_Bin]) -> npt.NDArray[np.int32]:
    """Every message's ``gpu_index`` repeated once per reading, all messages back to back."""
    gpu = np.concatenate([b.gpu_index for b in bins])
    if all(b.k == 1 for b in bins):
        return gpu
    n = np.array([b.n for b in bins], np.int64)
    kn = n * np.array([b.k for b in bins], np.int64)
    g0 = np.repeat(np.cumsum(n) - n, kn)
    s0 = np.repeat(np.cumsum(kn) - kn, kn)
    out: npt.NDArray[np.int32] = gpu[g0 + (np.arange(int(kn.sum())) - s0) % np.repeat(n, kn)]
    return out


def _assemble_readings(
    pieces: list[_Piece], cols: _Cols, lens: npt.NDArray[np.int64]
) -> TelemetryBatch:
    """The batch of ``pieces`` (in order; each reading a message) over ``cols``."""
    ks = [p.k for p in pieces]
    source_index: dict[str, int] = {}
    src = [source_index.setdefault(p.source_id, len(source_index)) for p in pieces]
    job_index: dict[str, int] = {}
    remap: list[int] = []
    job_start: list[int] = []
    for p in pieces:
        job_start.append(len(remap))
        remap.append(-1)
        remap.extend([job_index.setdefault(j, len(job_index)) for j in p.jobs])
    k_arr = np.array(ks, np.int64)
    r_total = int(k_arr.sum())
    first = np.repeat(np.cumsum(k_arr) - k_arr, k_arr)
    seq = np.repeat(np.array([p.seq for p in pieces], np.int64), k_arr)
    seq += np.arange(r_total, dtype=np.int64) - first
    counts = np.repeat(np.array([p.n for p in pieces], np.int64), k_arr)
    row_offsets = np.zeros(r_total + 1, np.int64)
    np.cumsum(counts, out=row_offsets[1:])
    start = np.repeat(np.array(job_start, np.int64), lens)
    job_code = np.asarray(remap, np.int32)[start + 1 + cols.ints[_SLOT]]
    f = cols.f32
    return TelemetryBatch(
        source_ids=tuple(source_index),
        source_code=np.repeat(np.array(src, np.int32), k_arr),
        seq=seq,
        ts_ns=np.array([t for p in pieces for t in p.ts], np.int64),
        interval_ns=np.array([t for p in pieces for t in p.interval], np.int64),
        row_offsets=row_offsets,
        gpu_index=np.ascontiguousarray(cols.ints[_GPU]),
        power_w=np.ascontiguousarray(f[0]),
        temp_c=np.ascontiguousarray(f[1]),
        memory_temp_c=np.ascontiguousarray(f[2]),
        sm_clock_mhz=np.ascontiguousarray(f[3]),
        gpu_util_pct=np.ascontiguousarray(f[4]),
        sm_active=np.ascontiguousarray(f[5]),
        tensor_active=np.ascontiguousarray(f[6]),
        dram_active=np.ascontiguousarray(f[7]),
        nvlink_bytes=np.ascontiguousarray(cols.nvlink),
        xid=np.ascontiguousarray(cols.ints[1]),
        job_ids=tuple(job_index),
        job_code=job_code,
    )


def _assemble(
    msgs: list[_Msg], floats: npt.NDArray[np.float64], ints: npt.NDArray[np.int64]
) -> TelemetryBatch:
    return assemble_telemetry(
        source_id=[g.source_id for g in msgs],
        seq=[g.seq for g in msgs],
        ts_ns=[g.ts_ns for g in msgs],
        interval_ns=[g.interval_ns for g in msgs],
        counts=[g.n for g in msgs],
        jobs=[g.jobs for g in msgs],
        floats=floats,
        ints=ints,
    )
