"""``gpu_telemetry``: one rack's (or node's) GPUs per message, as columns (the hot path).

Column fields map one-to-one onto dcgm-exporter's counters (FACTS.md section 6, docs/EVENTS.md).

How the model checks a message, and why (measured in bench/bench_decode.py, see
bench/RESULTS.md): the static range of each element is a pydantic constraint, checked in Rust
while the JSON is parsed (a few ns per element); the rules that depend on other fields (power
against the TDP of ``gpu_model``, ``job_slot`` against ``len(jobs)``, unique ``gpu_index``,
equal column lengths) are one model validator using C builtins (``max``, ``set``, ``len``).
A numpy range check inside the validator was measured slower at 64 GPUs a message: numpy's
per-call overhead exceeds the work. Numpy checks pay off per *batch*, which is what
:mod:`schemas.hotpath` does.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from schemas.envelope import INT32_MAX, EventBase, Id, PosInt, rule_error
from twin.gpus import GPU_MODELS

__all__ = [
    "COLUMNS",
    "DCGM_FIELDS",
    "FLOAT_COLUMNS",
    "FLOAT_ROWS",
    "INT_COLUMNS",
    "INT_ROWS",
    "MAX_GPUS_PER_MESSAGE",
    "NUMERIC_COLUMNS",
    "POWER_LIMIT_FACTOR",
    "RANGES",
    "ColumnRange",
    "GpuModelName",
    "GpuTelemetry",
    "numeric_columns",
    "pack_columns",
    "power_limit_w",
    "split_block",
]

GpuModelName = Literal["A100", "H100", "H200", "B200", "GB200"]
if set(get_args(GpuModelName)) != set(GPU_MODELS):  # pragma: no cover - guards an edit of gpus.py
    raise ImportError("schemas.telemetry.GpuModelName is out of sync with twin.gpus.GPU_MODELS")

#: Board power may exceed TDP briefly; above this multiple of TDP a reading is implausible.
POWER_LIMIT_FACTOR: Final = 1.5
MAX_GPUS_PER_MESSAGE: Final = 1024

#: The numeric columns, in field order: the rows of the packed block.
NUMERIC_COLUMNS: Final[tuple[str, ...]] = (
    "gpu_index",
    "power_w",
    "temp_c",
    "memory_temp_c",
    "sm_clock_mhz",
    "gpu_util_pct",
    "sm_active",
    "tensor_active",
    "dram_active",
    "nvlink_bytes",
    "xid",
    "job_slot",
)
INT_COLUMNS: Final[tuple[str, ...]] = ("gpu_index", "xid", "job_slot")
FLOAT_COLUMNS: Final[tuple[str, ...]] = tuple(c for c in NUMERIC_COLUMNS if c not in INT_COLUMNS)
#: Every column (all of equal length).
COLUMNS: Final[tuple[str, ...]] = ("gpu_index", "gpu_uuid", *NUMERIC_COLUMNS[1:])
#: Rows of the packed block holding :data:`FLOAT_COLUMNS` (contiguous) and :data:`INT_COLUMNS`.
FLOAT_ROWS: Final = slice(1, 10)
INT_ROWS: Final[tuple[int, ...]] = (0, 10, 11)
if (
    NUMERIC_COLUMNS[FLOAT_ROWS] != FLOAT_COLUMNS
    or tuple(NUMERIC_COLUMNS[r] for r in INT_ROWS) != INT_COLUMNS
):  # pragma: no cover - guards an edit of the column order
    raise ImportError("schemas.telemetry: FLOAT_ROWS/INT_ROWS do not match NUMERIC_COLUMNS")


@dataclass(frozen=True, slots=True)
class ColumnRange:
    """Inclusive range of a numeric column's elements; ``hi`` None = no upper bound.

    ``power_w`` and ``job_slot`` also get an upper bound per message (1.5 x the TDP of
    ``gpu_model``; ``len(jobs) - 1``), checked by the model validator."""

    lo: int | float
    hi: int | float | None
    unit: str


def power_limit_w(gpu_model: str) -> float:
    """Highest plausible board power of ``gpu_model``: 1.5 x its TDP."""
    return POWER_LIMIT_FACTOR * GPU_MODELS[gpu_model].tdp_w


_POWER_LIMITS: Final = {name: power_limit_w(name) for name in GPU_MODELS}

RANGES: Final[dict[str, ColumnRange]] = {
    "gpu_index": ColumnRange(0, INT32_MAX, ""),
    "power_w": ColumnRange(0, None, "W"),
    "temp_c": ColumnRange(-20, 130, "C"),
    "memory_temp_c": ColumnRange(-20, 150, "C"),
    "sm_clock_mhz": ColumnRange(0, 5000, "MHz"),
    "gpu_util_pct": ColumnRange(0, 100, "%"),
    "sm_active": ColumnRange(0, 1, ""),
    "tensor_active": ColumnRange(0, 1, ""),
    "dram_active": ColumnRange(0, 1, ""),
    "nvlink_bytes": ColumnRange(0, None, "bytes"),
    "xid": ColumnRange(0, INT32_MAX, ""),
    "job_slot": ColumnRange(-1, None, ""),
}

#: The dcgm-exporter counter (or label) each column carries (FACTS.md section 6).
DCGM_FIELDS: Final[dict[str, str]] = {
    "gpu_index": "Twin's dense GPU index (from rack_installed), unique in the message",
    "gpu_uuid": "dcgm UUID label",
    "power_w": "DCGM_FI_DEV_POWER_USAGE",
    "temp_c": "DCGM_FI_DEV_GPU_TEMP",
    "memory_temp_c": "DCGM_FI_DEV_MEMORY_TEMP",
    "sm_clock_mhz": "DCGM_FI_DEV_SM_CLOCK",
    "gpu_util_pct": "DCGM_FI_DEV_GPU_UTIL",
    "sm_active": "DCGM_FI_PROF_SM_ACTIVE",
    "tensor_active": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "dram_active": "DCGM_FI_PROF_DRAM_ACTIVE",
    "nvlink_bytes": "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "xid": "DCGM_FI_DEV_XID_ERRORS",
    "job_slot": "dcgm hpc_job label, as an index into jobs (-1: no job)",
}
_NOTES: Final = {
    "power_w": f"also <= {POWER_LIMIT_FACTOR:g} x the TDP of gpu_model",
    "nvlink_bytes": "bytes over the interval",
    "job_slot": "also < len(jobs)",
}


def _num(x: float) -> str:
    """``700`` rather than ``700.0``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _el(name: str) -> Any:
    """The static range of one element of column ``name`` (checked in Rust while parsing)."""
    return Field(ge=RANGES[name].lo, le=RANGES[name].hi)


def _about(name: str) -> Any:
    """Description (and, for power_w, the static JSON Schema cap) of column ``name``."""
    parts = [DCGM_FIELDS[name]]
    if RANGES[name].unit:
        parts.append(f"unit: {RANGES[name].unit}")
    if name in _NOTES:
        parts.append(_NOTES[name])
    extra: dict[str, Any] = {}
    if name == "power_w":  # the cap a producer can check alone: 1.5 x the largest TDP
        extra = {"items": {"type": "number", "minimum": 0, "maximum": max(_POWER_LIMITS.values())}}
    return Field(description="; ".join(parts) + ". One entry per GPU.", json_schema_extra=extra)


class GpuTelemetry(EventBase):
    """One rack's (or node's) dcgm readings over one sampling interval, as columns.

    Every column has one entry per GPU and all columns have equal length (1 to 1024).
    ``job_slot`` indexes ``jobs`` (-1: no job), like an Arrow dictionary array.
    ``power_w`` must not exceed 1.5 x the TDP of ``gpu_model``; ``gpu_index`` is unique.
    """

    event_type: Literal["gpu_telemetry"] = "gpu_telemetry"
    schema_version: Literal[1] = 1
    rack_id: Id
    """The rack (or node) these GPUs sit in; also the Kafka key."""
    gpu_model: GpuModelName
    """GPU model of every GPU in the message (a rack is homogeneous)."""
    interval_ns: PosInt
    """Sampling period this sample stands for; energy = power x interval."""

    gpu_index: Annotated[
        list[Annotated[int, _el("gpu_index")]],
        Field(min_length=1, max_length=MAX_GPUS_PER_MESSAGE),
        _about("gpu_index"),
    ]
    gpu_uuid: Annotated[list[str], Field(description="dcgm UUID label. One entry per GPU.")]
    power_w: Annotated[list[Annotated[float, _el("power_w")]], _about("power_w")]
    temp_c: Annotated[list[Annotated[float, _el("temp_c")]], _about("temp_c")]
    memory_temp_c: Annotated[list[Annotated[float, _el("memory_temp_c")]], _about("memory_temp_c")]
    sm_clock_mhz: Annotated[list[Annotated[float, _el("sm_clock_mhz")]], _about("sm_clock_mhz")]
    gpu_util_pct: Annotated[list[Annotated[float, _el("gpu_util_pct")]], _about("gpu_util_pct")]
    sm_active: Annotated[list[Annotated[float, _el("sm_active")]], _about("sm_active")]
    tensor_active: Annotated[list[Annotated[float, _el("tensor_active")]], _about("tensor_active")]
    dram_active: Annotated[list[Annotated[float, _el("dram_active")]], _about("dram_active")]
    nvlink_bytes: Annotated[list[Annotated[float, _el("nvlink_bytes")]], _about("nvlink_bytes")]
    xid: Annotated[list[Annotated[int, _el("xid")]], _about("xid")]
    job_slot: Annotated[list[Annotated[int, _el("job_slot")]], _about("job_slot")]
    jobs: list[Id]
    """Job ids that job_slot indexes (each travels once per message, not once per GPU)."""

    @model_validator(mode="after")
    def _check_columns(self) -> GpuTelemetry:
        cols = numeric_columns(self)
        n = len(self.gpu_index)
        if len(self.gpu_uuid) != n or any(len(c) != n for c in cols):
            for name in COLUMNS:
                length = len(getattr(self, name))
                if length != n:
                    raise rule_error(
                        f"{name}: column length {length} differs from gpu_index length {n} "
                        "(all columns must have equal length)"
                    )
        limit = _POWER_LIMITS[self.gpu_model]
        if max(self.power_w) > limit:
            i, v = next((i, v) for i, v in enumerate(self.power_w) if v > limit)
            tdp = GPU_MODELS[self.gpu_model].tdp_w
            raise rule_error(
                f"power_w: must be 0 <= x <= {_num(limit)} W ({POWER_LIMIT_FACTOR:g} x the "
                f"{_num(tdp)} W TDP of {self.gpu_model}); first offending index {i}, value {v!r}"
            )
        n_jobs = len(self.jobs)
        if max(self.job_slot) >= n_jobs:
            i, s = next((i, s) for i, s in enumerate(self.job_slot) if s >= n_jobs)
            rule = f"or an index into jobs (0..{n_jobs - 1})" if n_jobs else "because jobs is empty"
            raise rule_error(
                f"job_slot: must be -1 (no job) {rule}; first offending index {i}, value {s!r}"
            )
        if len(set(self.gpu_index)) != n:
            seen: set[int] = set()
            for i, g in enumerate(self.gpu_index):
                if g in seen:
                    raise rule_error(
                        f"gpu_index: must be unique; first repeated index {i}, value {g!r}"
                    )
                seen.add(g)
        return self


def numeric_columns(event: GpuTelemetry) -> tuple[list[Any], ...]:
    """``event``'s numeric columns in :data:`NUMERIC_COLUMNS` order."""
    return (
        event.gpu_index,
        event.power_w,
        event.temp_c,
        event.memory_temp_c,
        event.sm_clock_mhz,
        event.gpu_util_pct,
        event.sm_active,
        event.tensor_active,
        event.dram_active,
        event.nvlink_bytes,
        event.xid,
        event.job_slot,
    )


@lru_cache(maxsize=64)
def _packer(n: int) -> struct.Struct:
    # gpu_index as int64, the nine float columns as float64, xid and job_slot as int64:
    # 'q' refuses floats, 'd' refuses strings and null; '=' means no padding, 8 bytes each.
    return struct.Struct(f"={n}q{9 * n}d{2 * n}q")


def pack_columns(cols: Sequence[Sequence[Any]], n: int) -> npt.NDArray[np.int64]:
    """The 12 numeric columns (each of length ``n``) as one ``(12, n)`` block of 8-byte words:
    integer rows hold int64, float rows hold float64 bit patterns (see :func:`split_block`).

    One ``struct`` call, about 3x faster than ``np.array`` on Python lists. Raises
    ``TypeError``, ``struct.error`` or ``OverflowError`` on a non-number (booleans pass as 0/1),
    a float in an integer column, or an integer beyond int64.
    """
    packed = _packer(n).pack(
        *cols[0], *cols[1], *cols[2], *cols[3], *cols[4], *cols[5], *cols[6], *cols[7],
        *cols[8], *cols[9], *cols[10], *cols[11],
    )  # fmt: skip
    return np.frombuffer(packed, dtype=np.int64).reshape(12, n)


def split_block(
    bits: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Packed blocks (concatenated along axis 1) -> ``floats`` ``(9, N)`` in
    :data:`FLOAT_COLUMNS` order (a view) and ``ints`` ``(3, N)`` in :data:`INT_COLUMNS` order."""
    return bits[FLOAT_ROWS].view(np.float64), bits[list(INT_ROWS)]
