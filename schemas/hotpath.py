"""The ``facility.gpu`` hot path: raw Kafka values -> one :class:`TelemetryBatch` + rejects.

:func:`decode_telemetry` gives the same result as decoding every value with
:func:`schemas.codec.decode` and converting the good ones with
:func:`schemas.columnar.telemetry_batch`, at about half the cost per message: it parses with
orjson, checks the scalars with a few type tests, packs each message's columns into one buffer
with ``struct`` (which also rejects non-numbers), and checks every range of the whole batch at
once with numpy. No pydantic object is built for a good message.

The fast path may only *accept*. Anything it is not sure about (old versions, JSON booleans,
a failed range check, unknown keys ...) goes through :func:`schemas.codec.decode`, whose
pydantic models are the authority on both acceptance and the reason. The unit tests check on
random and mutated messages that both paths agree.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, Final, NamedTuple, cast

import numpy as np
import numpy.typing as npt
import orjson

from schemas.codec import decode
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
    ``(index into the input, reason)``."""

    batch: TelemetryBatch
    errors: list[tuple[int, str]]


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


def decode_telemetry(values: Sequence[bytes | None]) -> TelemetryDecoded:
    """Decode a batch of ``facility.gpu`` values into one batch plus ``(index, reason)`` rejects
    (the same rejects and reasons :func:`schemas.codec.decode` gives)."""
    good: list[tuple[int, _Msg]] = []
    blocks: list[npt.NDArray[np.int64]] = []
    suspects: list[int] = []
    for i, value in enumerate(values):
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

    errors: list[tuple[int, str]] = []
    rescued: list[tuple[int, GpuTelemetry]] = []
    for i in sorted(suspects):
        try:
            event = decode(values[i], _EXPECT)
        except EventError as exc:
            errors.append((i, exc.reason))
            continue
        rescued.append((i, cast(GpuTelemetry, event)))  # decode(expect=...) ensures the type

    msgs = [g for _, g in good]
    if rescued:  # rare (old versions, "true" inside a string ...): merge in input order
        msgs, floats, ints = _merge(good, floats, ints, rescued)
    if not msgs:
        return TelemetryDecoded(empty_telemetry_batch(), errors)
    return TelemetryDecoded(_assemble(msgs, floats, ints), errors)


def _merge(
    good: list[tuple[int, _Msg]],
    floats: npt.NDArray[np.float64],
    ints: npt.NDArray[np.int64],
    rescued: list[tuple[int, GpuTelemetry]],
) -> tuple[list[_Msg], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Interleave the fast path's messages with those the models accepted, by input index."""
    parts: list[tuple[int, _Msg, npt.NDArray[np.float64], npt.NDArray[np.int64]]] = []
    start = 0
    for i, g in good:
        parts.append((i, g, floats[:, start : start + g.n], ints[:, start : start + g.n]))
        start += g.n
    for i, e in rescued:
        limit = _POWER_LIMIT[e.gpu_model]
        g = _Msg(e.source_id, e.seq, e.ts_ns, e.interval_ns, len(e.gpu_index), e.jobs, limit)
        f, n = split_block(pack_columns(numeric_columns(e), len(e.gpu_index)))
        parts.append((i, g, f, n))
    parts.sort(key=lambda p: p[0])
    return (
        [p[1] for p in parts],
        np.concatenate([p[2] for p in parts], axis=1),
        np.concatenate([p[3] for p in parts], axis=1),
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
