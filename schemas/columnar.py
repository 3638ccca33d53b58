"""Validated ``gpu_telemetry`` events -> one :class:`twin.batches.TelemetryBatch`.

Per-message work is a few Python operations (dictionary codes, offsets, one ``struct`` pack of
the message's columns); every per-GPU value then moves in numpy: the packed blocks are
concatenated once and each column is cast once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from schemas.telemetry import (
    FLOAT_COLUMNS,
    INT_COLUMNS,
    GpuTelemetry,
    numeric_columns,
    pack_columns,
    split_block,
)
from twin.batches import TelemetryBatch

__all__ = ["assemble_telemetry", "empty_telemetry_batch", "telemetry_batch"]

_F = {name: i for i, name in enumerate(FLOAT_COLUMNS)}
_I = {name: i for i, name in enumerate(INT_COLUMNS)}


def empty_telemetry_batch() -> TelemetryBatch:
    """A batch with no messages and no samples."""
    return assemble_telemetry(
        source_ids=(),
        source_code=[],
        seq=[],
        ts_ns=[],
        interval_ns=[],
        counts=[],
        floats=np.empty((len(FLOAT_COLUMNS), 0)),
        ints=np.empty((len(INT_COLUMNS), 0), dtype=np.int64),
        job_ids=(),
        job_remap=[],
        job_remap_offsets=[],
    )


def assemble_telemetry(
    *,
    source_ids: tuple[str, ...],
    source_code: Sequence[int],
    seq: Sequence[int],
    ts_ns: Sequence[int],
    interval_ns: Sequence[int],
    counts: Sequence[int],
    floats: npt.NDArray[np.float64],
    ints: npt.NDArray[np.int64],
    job_ids: tuple[str, ...],
    job_remap: Sequence[int],
    job_remap_offsets: Sequence[int],
) -> TelemetryBatch:
    """Build a batch from per-message scalars and all samples' columns: ``floats`` ``(9, n)``
    in :data:`~schemas.telemetry.FLOAT_COLUMNS` order, ``ints`` ``(3, n)`` in
    :data:`~schemas.telemetry.INT_COLUMNS` order (already range-checked).

    ``job_remap`` holds, per message, ``-1`` followed by the batch-level codes of that message's
    ``jobs``; ``job_remap_offsets[k]`` is where message ``k``'s part starts, so a sample's
    ``job_slot`` ``s`` maps to ``job_remap[offset + 1 + s]`` (and -1 maps to the -1).
    """
    m = len(counts)
    row_offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts, dtype=np.int64), out=row_offsets[1:])
    if m:
        msg_of_sample = np.repeat(np.arange(m), counts)
        remap = np.asarray(job_remap, dtype=np.int32)
        offsets = np.asarray(job_remap_offsets, dtype=np.int64)
        job_code = remap[offsets[msg_of_sample] + 1 + ints[_I["job_slot"]]]
    else:
        job_code = np.empty(0, dtype=np.int32)

    def f32(name: str) -> npt.NDArray[np.float32]:
        return np.array(floats[_F[name]], dtype=np.float32)

    def i32(name: str) -> npt.NDArray[np.int32]:
        return np.array(ints[_I[name]], dtype=np.int32)

    return TelemetryBatch(
        source_ids=source_ids,
        source_code=np.asarray(source_code, dtype=np.int32),
        seq=np.asarray(seq, dtype=np.int64),
        ts_ns=np.asarray(ts_ns, dtype=np.int64),
        interval_ns=np.asarray(interval_ns, dtype=np.int64),
        row_offsets=row_offsets,
        gpu_index=i32("gpu_index"),
        power_w=f32("power_w"),
        temp_c=f32("temp_c"),
        memory_temp_c=f32("memory_temp_c"),
        sm_clock_mhz=f32("sm_clock_mhz"),
        gpu_util_pct=f32("gpu_util_pct"),
        sm_active=f32("sm_active"),
        tensor_active=f32("tensor_active"),
        dram_active=f32("dram_active"),
        nvlink_bytes=np.array(floats[_F["nvlink_bytes"]], dtype=np.float64),
        xid=i32("xid"),
        job_ids=job_ids,
        job_code=job_code,
    )


def telemetry_batch(events: Sequence[GpuTelemetry]) -> TelemetryBatch:
    """Concatenate validated telemetry messages, in the given (log) order, into one batch.

    ``source_ids`` and ``job_ids`` are batch-level dictionaries in order of first appearance;
    each sample's ``job_slot`` is mapped through its message's ``jobs`` into ``job_code``.
    """
    if not events:
        return empty_telemetry_batch()
    source_index: dict[str, int] = {}
    source_code = [source_index.setdefault(e.source_id, len(source_index)) for e in events]
    job_index: dict[str, int] = {}
    job_remap: list[int] = []
    job_remap_offsets: list[int] = []
    for e in events:
        job_remap_offsets.append(len(job_remap))
        job_remap.append(-1)
        job_remap.extend([job_index.setdefault(j, len(job_index)) for j in e.jobs])
    bits = np.concatenate([pack_columns(numeric_columns(e), len(e.gpu_index)) for e in events], 1)
    floats, ints = split_block(bits)
    return assemble_telemetry(
        source_ids=tuple(source_index),
        source_code=source_code,
        seq=[e.seq for e in events],
        ts_ns=[e.ts_ns for e in events],
        interval_ns=[e.interval_ns for e in events],
        counts=[len(e.gpu_index) for e in events],
        floats=floats,
        ints=ints,
        job_ids=tuple(job_index),
        job_remap=job_remap,
        job_remap_offsets=job_remap_offsets,
    )
