"""``gpu_telemetry``: one rack's (or node's) GPUs per message, as columns (the hot path).

Column fields map one-to-one onto dcgm-exporter's counters (FACTS.md section 6, docs/EVENTS.md).
Pydantic checks only the element types (strict, finite); the physical ranges of all numeric
columns are checked at once by one model validator on a ``(12, n)`` float64 block, never with
per-element constraints. The block is kept (as derived data, outside equality) so that
:func:`schemas.columnar.telemetry_batch` can concatenate it without touching the lists again.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import Annotated, Any, ClassVar, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
from pydantic import Field, PrivateAttr, model_validator

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
    "numeric_block",
    "numeric_bounds",
    "power_limit_w",
    "range_violation",
]

GpuModelName = Literal["A100", "H100", "H200", "B200", "GB200"]
if set(get_args(GpuModelName)) != set(GPU_MODELS):  # pragma: no cover - guards an edit of gpus.py
    raise ImportError("schemas.telemetry.GpuModelName is out of sync with twin.gpus.GPU_MODELS")

#: Board power may exceed TDP briefly; above this multiple of TDP a reading is implausible.
POWER_LIMIT_FACTOR: Final = 1.5
MAX_GPUS_PER_MESSAGE: Final = 1024
_FLOAT_MAX: Final = float(np.finfo(np.float64).max)

#: The numeric columns, in field order: the rows of :func:`numeric_block`.
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
POWER_ROW: Final = NUMERIC_COLUMNS.index("power_w")
SLOT_ROW: Final = NUMERIC_COLUMNS.index("job_slot")
#: Rows of the numeric block holding :data:`FLOAT_COLUMNS` (contiguous) and :data:`INT_COLUMNS`.
FLOAT_ROWS: Final = slice(1, 10)
INT_ROWS: Final[tuple[int, ...]] = (0, 10, 11)
if (
    NUMERIC_COLUMNS[FLOAT_ROWS] != FLOAT_COLUMNS
    or tuple(NUMERIC_COLUMNS[r] for r in INT_ROWS) != INT_COLUMNS
):  # pragma: no cover - guards an edit of the column order
    raise ImportError("schemas.telemetry: FLOAT_ROWS/INT_ROWS do not match NUMERIC_COLUMNS")


@dataclass(frozen=True, slots=True)
class ColumnRange:
    """Inclusive physical range of a numeric column (``power_w`` and ``job_slot`` get their
    upper bound per message: 1.5 x TDP of ``gpu_model``, and ``len(jobs) - 1``)."""

    lo: float
    hi: float
    unit: str


def power_limit_w(gpu_model: str) -> float:
    """Highest plausible board power of ``gpu_model``: 1.5 x its TDP."""
    return POWER_LIMIT_FACTOR * GPU_MODELS[gpu_model].tdp_w


_MAX_POWER_LIMIT_W: Final = max(power_limit_w(m) for m in GPU_MODELS)

RANGES: Final[dict[str, ColumnRange]] = {
    "gpu_index": ColumnRange(0, INT32_MAX, ""),
    "power_w": ColumnRange(0, _MAX_POWER_LIMIT_W, " W"),
    "temp_c": ColumnRange(-20, 130, " C"),
    "memory_temp_c": ColumnRange(-20, 150, " C"),
    "sm_clock_mhz": ColumnRange(0, 5000, " MHz"),
    "gpu_util_pct": ColumnRange(0, 100, " %"),
    "sm_active": ColumnRange(0, 1, ""),
    "tensor_active": ColumnRange(0, 1, ""),
    "dram_active": ColumnRange(0, 1, ""),
    "nvlink_bytes": ColumnRange(0, _FLOAT_MAX, " bytes"),
    "xid": ColumnRange(0, INT32_MAX, ""),
    "job_slot": ColumnRange(-1, INT32_MAX, ""),
}

_LO: Final = np.array([RANGES[c].lo for c in NUMERIC_COLUMNS], dtype=np.float64)[:, None]
_HI: Final = np.array([RANGES[c].hi for c in NUMERIC_COLUMNS], dtype=np.float64)[:, None]
_LO.flags.writeable = False
_HI.flags.writeable = False


def numeric_bounds() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(lo, hi)``, each ``(12, 1)``, read-only: the static bounds of the numeric rows (the
    power and job-slot rows need their per-message upper bounds applied on top)."""
    return _LO, _HI


@lru_cache(maxsize=64)
def _packer(count: int) -> struct.Struct:
    return struct.Struct(f"={count}d")


#: The dcgm-exporter counter (or label) each column carries (FACTS.md section 6).
DCGM_FIELDS: Final[dict[str, str]] = {
    "gpu_index": "(twin's dense GPU index, from rack_installed)",
    "gpu_uuid": "UUID label",
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
    "job_slot": "hpc_job label, as an index into jobs",
}


def _num(x: float) -> str:
    """``700`` rather than ``700.0``, ``2147483647`` rather than ``2.14748e+09``."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


def _column(name: str) -> Any:
    """Field for a numeric column; its JSON Schema carries the range from :data:`RANGES`."""
    rng = RANGES[name]
    kind = "integer" if name in INT_COLUMNS else "number"
    items: dict[str, Any] = {"type": kind, "minimum": rng.lo}
    if name == "power_w":
        rule = f"0 <= x <= {_num(POWER_LIMIT_FACTOR)} x TDP of gpu_model (at most {_num(rng.hi)})"
    elif name == "job_slot":
        rule = "-1 (no job) or an index into jobs"
    elif rng.hi >= _FLOAT_MAX:
        rule = f">= {_num(rng.lo)}, finite"
    else:
        rule = f"{_num(rng.lo)} <= x <= {_num(rng.hi)}"
    if name != "job_slot" and rng.hi < _FLOAT_MAX:
        items["maximum"] = rng.hi
    unit = f" Unit:{rng.unit}." if rng.unit else ""
    description = f"{DCGM_FIELDS[name]}.{unit} Rule: {rule}. One entry per GPU."
    return Field(description=description, json_schema_extra={"items": items})


def _rule(name: str, value: float, gpu_model: str, n_jobs: int) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if name == "power_w":
        tdp = GPU_MODELS[gpu_model].tdp_w
        return (
            f"must be 0 <= x <= {_num(power_limit_w(gpu_model))} W "
            f"({_num(POWER_LIMIT_FACTOR)} x the {_num(tdp)} W TDP of {gpu_model})"
        )
    if name == "job_slot":
        if n_jobs == 0:
            return "must be -1 (no job) because jobs is empty"
        return f"must be -1 (no job) or an index into jobs (0..{n_jobs - 1})"
    rng = RANGES[name]
    if rng.hi >= _FLOAT_MAX:
        return f"must be >= {_num(rng.lo)}{rng.unit} and finite"
    return f"must be {_num(rng.lo)} <= x <= {_num(rng.hi)}{rng.unit}"


def range_violation(columns: Sequence[Sequence[float]], gpu_model: str, n_jobs: int) -> str | None:
    """The first range violation in ``columns`` (the numeric columns in
    :data:`NUMERIC_COLUMNS` order) as ``"field: rule; first offending index i, value v"``, or
    None. Plain Python: only for building messages, never on the accepting path."""
    limits = {"power_w": power_limit_w(gpu_model), "job_slot": float(n_jobs - 1)}
    for name, col in zip(NUMERIC_COLUMNS, columns, strict=True):
        rng = RANGES[name]
        hi = limits.get(name, rng.hi)
        for i, v in enumerate(col):
            if not rng.lo <= v <= hi:  # also catches NaN and infinities
                rule = _rule(name, v, gpu_model, n_jobs)
                return f"{name}: {rule}; first offending index {i}, value {v!r}"
    return None


class _Derived:
    """Data derived from a model's fields (so never part of its equality), plus the list
    objects it was derived from (so a ``model_copy(update=...)`` cannot serve a stale copy)."""

    __slots__ = ("array", "sources")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, array: npt.NDArray[np.float64], sources: tuple[list[Any], ...]) -> None:
        self.array = array
        self.sources = sources

    def __eq__(self, other: object) -> bool:
        return True


class GpuTelemetry(EventBase):
    """One rack's (or node's) dcgm readings over one sampling interval, as columns.

    Every column has one entry per GPU and all columns have equal length (1 to 1024).
    ``job_slot`` indexes ``jobs`` (-1: no job), like an Arrow dictionary array.
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
        list[int],
        Field(min_length=1, max_length=MAX_GPUS_PER_MESSAGE),
        _column("gpu_index"),
    ]
    gpu_uuid: Annotated[list[str], Field(description="UUID label. One entry per GPU.")]
    power_w: Annotated[list[float], _column("power_w")]
    temp_c: Annotated[list[float], _column("temp_c")]
    memory_temp_c: Annotated[list[float], _column("memory_temp_c")]
    sm_clock_mhz: Annotated[list[float], _column("sm_clock_mhz")]
    gpu_util_pct: Annotated[list[float], _column("gpu_util_pct")]
    sm_active: Annotated[list[float], _column("sm_active")]
    tensor_active: Annotated[list[float], _column("tensor_active")]
    dram_active: Annotated[list[float], _column("dram_active")]
    nvlink_bytes: Annotated[list[float], _column("nvlink_bytes")]
    xid: Annotated[list[int], _column("xid")]
    job_slot: Annotated[list[int], _column("job_slot")]
    jobs: list[Id]
    """Job ids that job_slot indexes (each travels once per message, not once per GPU)."""

    _numeric: _Derived | None = PrivateAttr(default=None)
    _COLUMN_NAMES: ClassVar[tuple[str, ...]] = COLUMNS

    def _numeric_columns(self) -> tuple[list[Any], ...]:
        return (
            self.gpu_index,
            self.power_w,
            self.temp_c,
            self.memory_temp_c,
            self.sm_clock_mhz,
            self.gpu_util_pct,
            self.sm_active,
            self.tensor_active,
            self.dram_active,
            self.nvlink_bytes,
            self.xid,
            self.job_slot,
        )

    @model_validator(mode="after")
    def _check_columns(self) -> GpuTelemetry:
        cols = self._numeric_columns()
        n = len(self.gpu_index)
        if len(self.gpu_uuid) != n or any(len(c) != n for c in cols):
            for name in self._COLUMN_NAMES:
                if len(getattr(self, name)) != n:
                    raise rule_error(
                        f"{name}: column length {len(getattr(self, name))} differs from "
                        f"gpu_index length {n} (all columns must have equal length)"
                    )
        try:
            block = np.frombuffer(_packer(12 * n).pack(*chain.from_iterable(cols)))
        except (struct.error, OverflowError):  # an int beyond float range: out of range anyway
            block = None
        if block is not None:
            block = block.reshape(12, n)
            hi = _HI.copy()
            hi[POWER_ROW, 0] = power_limit_w(self.gpu_model)
            hi[SLOT_ROW, 0] = len(self.jobs) - 1
            ok = (block >= _LO) & (block <= hi)
            if np.count_nonzero(ok) == ok.size:
                if len(set(self.gpu_index)) != n:
                    _raise_duplicate("gpu_index", self.gpu_index)
                self._numeric = _Derived(block, cols)
                return self
        message = range_violation(cols, self.gpu_model, len(self.jobs))
        raise rule_error(message or "numeric columns: out of range")


def _raise_duplicate(name: str, values: Sequence[int]) -> None:
    seen: set[int] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise rule_error(f"{name}: must be unique; first repeated index {i}, value {v!r}")
        seen.add(v)


def numeric_block(event: GpuTelemetry) -> npt.NDArray[np.float64]:
    """The ``(12, n)`` float64 block of ``event``'s numeric columns, rows in
    :data:`NUMERIC_COLUMNS` order (integers are exact: they are range-checked below 2**31).
    Reuses the block built during validation when it is still current."""
    cols = event._numeric_columns()
    derived = event._numeric
    if derived is not None and all(a is b for a, b in zip(derived.sources, cols, strict=True)):
        return derived.array
    n = len(event.gpu_index)
    return np.array(cols, dtype=np.float64).reshape(12, n)
