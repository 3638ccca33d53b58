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
        source_id=[],
        seq=[],
        ts_ns=[],
        interval_ns=[],
        counts=[],
        jobs=[],
        floats=np.empty((len(FLOAT_COLUMNS), 0)),
        ints=np.empty((len(INT_COLUMNS), 0), dtype=np.int64),
    )


def assemble_telemetry(
    *,
    source_id: Sequence[str],
    seq: Sequence[int],
    ts_ns: Sequence[int],
    interval_ns: Sequence[int],
    counts: Sequence[int],
    jobs: Sequence[Sequence[str]],
    floats: npt.NDArray[np.float64],
    ints: npt.NDArray[np.int64],
) -> TelemetryBatch:
    """Build a batch from per-message fields (length m) and all samples' columns: ``floats``
    ``(9, n)`` in :data:`~schemas.telemetry.FLOAT_COLUMNS` order and ``ints`` ``(3, n)`` in
    :data:`~schemas.telemetry.INT_COLUMNS` order, already validated.

    ``source_ids`` and ``job_ids`` become batch-level dictionaries in order of first appearance;
    each sample's ``job_slot`` is mapped through its message's ``jobs`` into ``job_code``.
    """
    m = len(counts)
    source_index: dict[str, int] = {}
    source_code = [source_index.setdefault(s, len(source_index)) for s in source_id]
    # per message: -1, then the batch codes of its jobs; slot s of message k maps to
    # remap[offsets[k] + 1 + s], so slot -1 lands on the message's -1
    job_index: dict[str, int] = {}
    remap: list[int] = []
    offsets: list[int] = []
    for message_jobs in jobs:
        offsets.append(len(remap))
        remap.append(-1)
        remap.extend([job_index.setdefault(j, len(job_index)) for j in message_jobs])
    row_offsets = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts, dtype=np.int64), out=row_offsets[1:])
    if m:
        msg_of_sample = np.repeat(np.arange(m), counts)
        start = np.asarray(offsets, dtype=np.int64)[msg_of_sample]
        job_code = np.asarray(remap, dtype=np.int32)[start + 1 + ints[_I["job_slot"]]]
    else:
        job_code = np.empty(0, dtype=np.int32)

    def f32(name: str) -> npt.NDArray[np.float32]:
        return np.array(floats[_F[name]], dtype=np.float32)

    def i32(name: str) -> npt.NDArray[np.int32]:
        return np.array(ints[_I[name]], dtype=np.int32)

    return TelemetryBatch(
        source_ids=tuple(source_index),
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
        job_ids=tuple(job_index),
        job_code=job_code,
    )


def telemetry_batch(events: Sequence[GpuTelemetry]) -> TelemetryBatch:
    """Concatenate validated telemetry messages, in the given (log) order, into one batch.

    ``source_ids`` and ``job_ids`` are batch-level dictionaries in order of first appearance;
    each sample's ``job_slot`` is mapped through its message's ``jobs`` into ``job_code``.
    """
    if not events:
        return empty_telemetry_batch()
    blocks = [pack_columns(numeric_columns(e), len(e.gpu_index)) for e in events]
    floats, ints = split_block(np.concatenate(blocks, axis=1))
    return assemble_telemetry(
        source_id=[e.source_id for e in events],
        seq=[e.seq for e in events],
        ts_ns=[e.ts_ns for e in events],
        interval_ns=[e.interval_ns for e in events],
        counts=[len(e.gpu_index) for e in events],
        jobs=[e.jobs for e in events],
        floats=floats,
        ints=ints,
    )
