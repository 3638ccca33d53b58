"""Reducers for ``facility.topology``: racks join the dense GPU index; GPUs fail and recover.

The dense GPU index is the ``gpu_index`` column of ``rack_installed`` (the facility's own
numbering, so a rack's GPUs are contiguous when the facility numbers them that way). Arrays grow
by amortized doubling to the largest index seen; indices never installed stay unknown and
telemetry naming them is counted as ``unknown``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from twin.batches import GpuStatusChange, RackInstalled
from twin.cells import reassign_cells
from twin.gpus import model_code
from twin.state import Status, TwinState

__all__ = ["known_gpus", "on_gpu_status", "on_rack_installed"]

I32 = npt.NDArray[np.int32]

_ACTIONS = {"failed": Status.FAILED, "drained": Status.DRAINED, "repaired": Status.UP}


def known_gpus(state: TwinState, indices: npt.NDArray[np.integer]) -> I32:
    """The unique installed GPUs among ``indices`` (sorted); the rest are counted unknown."""
    idx = np.unique(np.asarray(indices, dtype=np.int64))
    inside = (idx >= 0) & (idx < state.n["gpu"])
    ok = idx[inside]
    ok = ok[state.gpu_installed[ok]]
    if ok.size < idx.size:
        state.count("unknown", int(idx.size - ok.size))
    return ok.astype(np.int32)


def on_rack_installed(state: TwinState, ev: RackInstalled) -> I32:
    """Install a rack; returns the GPUs it brought (for leases waiting on GPU counts)."""
    empty = np.zeros(0, np.int32)
    try:
        model = model_code(ev.gpu_model)
    except ValueError:
        state.count("unknown")
        return empty
    campus = state.register("campus", state.campus_index, state.campus_ids, ev.campus_id)
    halls_before = state.n["hall"]
    hall = state.register("hall", state.hall_index, state.hall_ids, ev.hall_id)
    if hall >= halls_before:
        state.campus_n_halls[campus] += 1
    state.hall_campus[hall] = campus
    rack = state.register("rack", state.rack_index, state.rack_ids, ev.rack_id)
    if rack == len(state.rack_uuids):
        state.rack_uuids.append(tuple(ev.gpu_uuid))
    else:
        state.rack_uuids[rack] = tuple(ev.gpu_uuid)
    state.rack_campus[rack] = campus
    state.rack_hall[rack] = hall
    state.rack_model[rack] = model
    state.rack_gpus_per_node[rack] = ev.gpus_per_node
    idx = np.unique(np.asarray(ev.gpu_index, dtype=np.int64))
    bad = int(np.count_nonzero(idx < 0))
    if bad:
        state.count("unknown", bad)
        idx = idx[idx >= 0]
    if idx.size == 0:
        return empty
    need = int(idx[-1]) + 1
    state.ensure("gpu", need)
    state.n["gpu"] = max(state.n["gpu"], need)
    old_rack = state.gpu_rack[idx]
    moved = old_rack[(old_rack >= 0) & (old_rack != rack)]
    if moved.size:
        np.subtract.at(state.rack_n_gpus, moved, 1)
    state.rack_n_gpus[rack] += int(np.count_nonzero(old_rack != rack))
    state.gpu_installed[idx] = True
    state.gpu_rack[idx] = rack
    state.gpu_model[idx] = model
    gpus = idx.astype(np.int32)
    reassign_cells(state, gpus, ev.ts_ns)
    return gpus


def on_gpu_status(state: TwinState, ev: GpuStatusChange) -> None:
    code = _ACTIONS.get(ev.action)
    if code is None:
        state.count("unknown")
        return
    gpus = known_gpus(state, ev.gpu_indices)
    if gpus.size == 0:
        return
    state.gpu_status[gpus] = code
    if code != Status.UP:
        state.gpu_last_compute[gpus] = np.nan
    reassign_cells(state, gpus, ev.ts_ns)
