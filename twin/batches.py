"""Columnar input batches: what crosses from the validated edge (``schemas``) into the core.

The edge validates Kafka messages with the pydantic models once, then concatenates many messages
into one of these struct-of-arrays batches. Reducers in :mod:`twin` only ever see these numpy
columns, never pydantic objects, and never loop over GPUs in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["TelemetryBatch"]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class TelemetryBatch:
    """Many ``gpu_telemetry`` messages (one rack or node each) concatenated, in log order.

    Per-message columns have length ``m`` (messages); per-sample columns have length ``n``
    (GPU samples, all messages' GPUs back to back). Message ``k`` owns samples
    ``row_offsets[k]:row_offsets[k + 1]``.

    ``source_ids`` and ``job_ids`` are batch-level dictionaries: ``source_code`` and
    ``job_code`` index into them (``job_code == -1``: the GPU runs no job).
    """

    # per message (length m)
    source_ids: tuple[str, ...]
    source_code: I32
    seq: I64
    ts_ns: I64
    interval_ns: I64
    row_offsets: I64  # length m + 1
    # per GPU sample (length n)
    gpu_index: I32
    power_w: F32
    temp_c: F32
    memory_temp_c: F32
    sm_clock_mhz: F32
    gpu_util_pct: F32
    sm_active: F32
    tensor_active: F32
    dram_active: F32
    nvlink_bytes: F64
    xid: I32
    job_ids: tuple[str, ...]
    job_code: I32

    @property
    def n_messages(self) -> int:
        return int(self.seq.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.gpu_index.shape[0])
