"""A checksum of the twin's state, for replay and recovery equality (event-sourcing rule 3).

BLAKE2b over every state array (live rows only, fixed order, each as name, dtype, shape and raw
bytes), the scalars and the registries. Equal folds give equal checksums; capacity (how far the
arrays were pre-grown) does not matter, and neither does the kernels' cache. The ``duplicates``
counter is left out: at-least-once delivery may re-deliver different events to a recovering
worker than to an uninterrupted one, and duplicates change nothing else.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

from twin.state import COUNTERS, TwinState

__all__ = ["state_checksum"]


def _array(h: hashlib.blake2b, name: str, arr: npt.NDArray[np.generic]) -> None:
    h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
    h.update(np.ascontiguousarray(arr).tobytes())


def state_checksum(state: TwinState) -> str:
    """Hex BLAKE2b-256 digest of the state."""
    h = hashlib.blake2b(digest_size=32)
    dup = COUNTERS.index("duplicates")
    for name, arr in state.arrays().items():
        if name == "src_hwm":
            continue  # hashed below by source id: codes follow arrival order across partitions
        _array(h, name, np.delete(arr, dup) if name in ("tick_counts", "total_counts") else arr)
    scalars = (
        state.tick_ns,
        state.m_ref,
        state.default_usd_per_mwh,
        state.top_n,
        state.stall_factor,
        state.pace_tolerance,
        state.tick_start_ns,
        state.tick_end_ns,
        state.tick_seq,
        state.usd_per_mwh,
        state.meter_total_j,
        state.meter_it_j,
        state.chiller_j,
        state.wet_bulb_c,
        state.flops_dropped,
        state.cells_version,
        state.cells_compacted,
    )
    h.update(repr(scalars).encode())
    h.update(repr(sorted(state.n.items())).encode())
    for registry in (
        sorted((sid, int(state.src_hwm[code])) for sid, code in state.src_index.items()),
        state.rack_ids,
        state.rack_uuids,
        state.hall_ids,
        state.campus_ids,
        state.job_ids,
        state.job_tenant_ids,
        state.lease_ids,
        state.tenant_ids,
        state.bat_ids,
        state.link_ids,
        sorted(state.lease_pending.items()),
        sorted(state.cell_index.items()),
        sorted(state.dirty_jobs),
    ):
        h.update(repr(registry).encode())
    for k, members in enumerate(state.job_members):
        _array(h, f"job_members[{k}]", members)
        _array(h, f"job_cells[{k}]", state.job_cells[k])
        _array(h, f"job_cell_w[{k}]", state.job_cell_w[k])
    _array(h, "strag_top", state.strag_top)
    _array(h, "strag_top_racks", state.strag_top_racks)
    h.update(repr(state.strag_any).encode())
    return h.hexdigest()
