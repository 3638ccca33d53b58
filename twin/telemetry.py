"""Folding ``gpu_telemetry`` batches: deduplication and the per-sample hot path.

Deduplication (event-sourcing rule 2): every source has a high-water mark, the largest ``seq``
accepted from it. A message whose ``seq`` is <= its source's mark -- counting the messages
before it in the same batch -- is a duplicate and changes nothing but the ``duplicates``
counter. Kafka keeps one source's messages in order on its partition, so the mark never
rejects a message that was not seen before. The check is vectorized over the batch's messages
and gives the same answer as checking them one by one.

The hot path (no Python loop over samples): one gather of each sample's cell, small gathers
of the cell's estimator inputs, the estimator (:mod:`twin.estimator`), and six ``bincount``\\ s
of whole numbers into the cells' accumulators (exact in any grouping).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from twin.batches import TelemetryBatch
from twin.estimator import comm_share, effective_mode, split_samples
from twin.state import ACC_E, ACC_T, Cat, Mode, TwinState

__all__ = ["accept_messages", "accept_seq", "fold_telemetry", "source_codes"]

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

_CHUNK: Final = 65_536  # samples per estimator pass
_EXACT: Final = float(2**53)  # float64 sums of whole numbers are exact below this
#: category of the time that is neither compute nor comm stall, per estimator mode
_REST: Final = np.array([Cat.STRAGGLER, Cat.ALLOC_IDLE, Cat.UNALLOC, Cat.DOWN], np.intp)


def source_codes(state: TwinState, source_ids: tuple[str, ...]) -> I64:
    """State-wide source codes for a batch's source dictionary (registering new sources)."""
    index = state.src_index
    codes = np.fromiter((index.get(sid, -1) for sid in source_ids), np.int64, len(source_ids))
    for k in np.flatnonzero(codes < 0).tolist():  # new sources, in order
        sid = source_ids[k]
        code = index.get(sid)
        if code is None:
            code = state.n["src"]
            state.ensure("src", code + 1)
            index[sid] = code
            state.n["src"] = code + 1
        codes[k] = code
    return codes


def accept_seq(state: TwinState, src: I64, seq: I64) -> B:
    """Which of these (source, seq) pairs, taken in order, are new; then raise the marks."""
    m = int(seq.shape[0])
    if m == 0:
        return np.zeros(0, np.bool_)
    hwm = state.src_hwm
    if m == 1 or np.unique(src).shape[0] == m:
        accept: B = seq > hwm[src]
    else:
        order = np.argsort(src, kind="stable")
        s = src[order]
        q = seq[order]
        values, rank = np.unique(q, return_inverse=True)
        width = np.int64(values.shape[0])
        run = np.maximum.accumulate(s * width + rank)  # segmented running max (s sorted)
        first = np.ones(m, np.bool_)
        first[1:] = s[1:] != s[:-1]
        prev = np.empty(m, np.int64)
        prev[0] = -1
        prev[1:] = values[run[:-1] - s[:-1] * width]  # decode with the previous row's source
        prev[first] = -1
        accept = np.empty(m, np.bool_)
        accept[order] = q > np.maximum(hwm[s], prev)
    np.maximum.at(hwm, src, seq)
    return accept


def accept_messages(state: TwinState, batch: TelemetryBatch) -> B:
    """Deduplicate a batch's messages (see the module docstring); counts the duplicates.

    New sources are registered in the order their first message appears, so the registry does
    not depend on how the log was cut into batches."""
    if batch.n_messages == 0:
        return np.zeros(0, np.bool_)
    used, first = np.unique(batch.source_code, return_index=True)
    used = used[np.argsort(first, kind="stable")]
    codes = np.zeros(len(batch.source_ids), np.int64)
    codes[used] = source_codes(state, tuple(batch.source_ids[int(k)] for k in used))
    src = codes[batch.source_code]
    accept = accept_seq(state, src, batch.seq.astype(np.int64, copy=False))
    dup = int(accept.shape[0] - np.count_nonzero(accept))
    if dup:
        state.count("duplicates", dup)
    return accept


def fold_telemetry(state: TwinState, batch: TelemetryBatch, accept: B, lo: int, hi: int) -> None:
    """Fold messages ``lo:hi`` of ``batch`` (those ``accept`` keeps) into the open tick."""
    if hi <= lo:
        return
    acc = accept[lo:hi]
    n_acc = int(np.count_nonzero(acc))
    if n_acc == 0:
        return
    offsets = batch.row_offsets
    r0, r1 = int(offsets[lo]), int(offsets[hi])
    # whole-number float64 sums are exact below 2**53: fold absurdly large ranges in halves
    if r1 > r0 and hi - lo > 1:
        top_power = max(float(np.max(batch.power_w[r0:r1])), 1.0)
        top_interval = float(np.max(batch.interval_ns[lo:hi]))
        if (r1 - r0) * top_interval * max(top_power * 1e-3, 1.0) >= _EXACT:
            half = lo + (hi - lo) // 2
            fold_telemetry(state, batch, accept, lo, half)
            fold_telemetry(state, batch, accept, half, hi)
            return
    counts = np.diff(offsets[lo : hi + 1])
    ts = batch.ts_ns[lo:hi]
    interval = batch.interval_ns[lo:hi]
    if n_acc < hi - lo:
        keep = np.repeat(acc, counts)
        ts, interval, counts = ts[acc], interval[acc], counts[acc]
    else:
        keep = None

    def col(a: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        part = a[r0:r1]
        return part if keep is None else part[keep]

    state.count("messages", n_acc)
    state.count("late", int(np.count_nonzero(ts - interval < state.tick_start_ns)))
    gpu = col(batch.gpu_index).astype(np.intp, copy=False)
    if gpu.size == 0:
        return
    ts_s = np.repeat(ts, counts)
    interval_s = np.repeat(interval, counts).astype(np.float64)
    power = np.asarray(col(batch.power_w), np.float32)
    sm = np.asarray(col(batch.sm_active), np.float32)
    util = np.asarray(col(batch.gpu_util_pct), np.float32)
    xid = np.asarray(col(batch.xid), np.int32)
    temp = np.asarray(col(batch.temp_c), np.float32)
    # unknown GPUs: outside the index, or not installed (no cell)
    n_gpu = state.n["gpu"]
    known: B | None = None
    if int(gpu.min()) < 0 or int(gpu.max()) >= n_gpu:
        known = (gpu >= 0) & (gpu < n_gpu)
        gpu = np.where(known, gpu, 0)
    cell = state.gpu_cell[gpu]
    if known is not None or int(cell.min()) < 0:
        known = (cell >= 0) if known is None else known & (cell >= 0)
        state.count("unknown", int(known.shape[0] - np.count_nonzero(known)))
        gpu, cell, ts_s, interval_s = gpu[known], cell[known], ts_s[known], interval_s[known]
        power, sm, xid, temp = power[known], sm[known], xid[known], temp[known]
        util = util[known]
        if gpu.size == 0:
            return
    state.count("samples", int(gpu.size))
    # chunks keep the estimator's temporaries in cache (a 220,000-sample temporary would not be)
    for a in range(0, int(gpu.size), _CHUNK):
        b = a + _CHUNK
        _fold_samples(
            state,
            gpu=gpu[a:b],
            cell=cell[a:b],
            ts=ts_s[a:b],
            interval=interval_s[a:b],
            power=power[a:b],
            sm=sm[a:b],
            util=util[a:b],
            xid=xid[a:b],
        )
    state.gpu_last_power_w[gpu] = power
    state.gpu_last_temp_c[gpu] = temp


def _fold_samples(
    state: TwinState,
    *,
    gpu: npt.NDArray[np.intp],
    cell: npt.NDArray[np.int32],
    ts: I64,
    interval: npt.NDArray[np.float64],
    power: npt.NDArray[np.float32],
    sm: npt.NDArray[np.float32],
    util: npt.NDArray[np.float32],
    xid: npt.NDArray[np.int32],
) -> None:
    mode = effective_mode(
        state.cell_mode[cell],
        ts_ns=ts - (interval * 0.5).astype(np.int64),  # the interval's middle
        deadline_ns=state.cell_deadline_ns[cell],
        ckpt_start_ns=state.cell_ckpt_start_ns[cell],
        ckpt_end_ns=state.cell_ckpt_end_ns[cell],
        xid=xid,
    )
    comm_frac = state.cell_comm[cell]
    step_s = state.cell_step_s[cell]
    interval_s = interval * 1e-9
    since_end = (ts - state.cell_step_end_ns[cell]) * 1e-9 - interval_s
    split = split_samples(
        mode,
        sm_active=sm,
        comm_frac=comm_frac,
        mfu_floor=state.cell_floor[cell],
        interval_ns=interval,
        power_w=power,
        comm_phase=comm_share(since_end, interval_s, step_s, comm_frac * step_s),
        gpu_util_pct=util,
    )
    n_cells = state.n["cell"]
    # what is not compute or comm stall lands in the mode's own category (straggler for STEP)
    slot = cell.astype(np.intp) * Cat.N + _REST[mode]
    size = n_cells * Cat.N
    rest_t = np.bincount(
        slot, interval - split.compute_ns - split.comm_ns - split.idle_ns, minlength=size
    )
    rest_e = np.bincount(
        slot, split.energy_uj - split.compute_uj - split.comm_uj - split.idle_uj, minlength=size
    )
    acc = state.cell_acc
    acc[ACC_T : ACC_T + Cat.N, :n_cells] += rest_t.reshape(n_cells, Cat.N).T
    acc[ACC_E : ACC_E + Cat.N, :n_cells] += rest_e.reshape(n_cells, Cat.N).T
    for row, weights in (
        (ACC_T + Cat.COMPUTE, split.compute_ns),
        (ACC_T + Cat.COMM, split.comm_ns),
        (ACC_T + Cat.ALLOC_IDLE, split.idle_ns),
        (ACC_E + Cat.COMPUTE, split.compute_uj),
        (ACC_E + Cat.COMM, split.comm_uj),
        (ACC_E + Cat.ALLOC_IDLE, split.idle_uj),
    ):
        acc[row, :n_cells] += np.bincount(cell, weights, minlength=n_cells)
    # the GPU's latest compute share while stepping, and its compute and stepping time since its
    # job's last step: straggler attribution reads the window (a step's last sample is mostly
    # its exposed all-reduce, so the latest share alone says little about the pace)
    stepping = mode == Mode.STEP
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(stepping, split.compute_ns / interval, np.nan)
    state.gpu_last_compute[gpu] = share
    if stepping.any():
        g = gpu[stepping]
        np.add.at(state.gpu_win_compute_ns, g, split.compute_ns[stepping])
        np.add.at(state.gpu_win_step_ns, g, interval[stepping])
