"""The tick's kernels: every KPI of every scope, computed on cells (see :mod:`twin.cells`).

Per cell c (GPUs sharing rack, job, work-share class, lease and status) over a tick of dt:

- GPU-time ``G_c = cell_n * dt + cell_corr_ns`` (GPU-ns the cell's members spent in it).
- Time fractions: the estimator's per-sample nanoseconds in each of the six categories,
  normalized to the cell's observed sample time and weighted by ``G_c``; a cell no sample
  covered falls back to its status (down, unallocated, else allocated idle). Scope fractions
  are therefore GPU-weighted; they sum to 1.
- Energy ``E_c``: board energy by category (per sample, so energy drawn while computing is
  charged to compute), plus the cell's share of its rack's non-GPU power (PDU - sum of the rack's
  board energy, floored at 0), split evenly per GPU-second and by the cell's time fractions.
- Credited FLOPs ``A_c`` (job steps ending in the tick) are capped at the cell's peak
  ``sum peak_i * dt`` so MFU stays in [0, 1]; the excess carries into the next tick.
  ``mfu_c = A_c / (peak_c * G_c)``; useful = ``E_c * mfu_c`` (every GPU of a cell has the same
  mfu_i, so this is exactly sum E_i * mfu_i); kernel inefficiency = compute energy - useful.
- The ledger columns (useful, kernel inefficiency, straggler wait, comm stall, allocated idle,
  unallocated, down) sum to ``E_c``; the facility adds overhead = meter total - meter IT.

Against DESIGN.md's per-GPU wording: fractions and MFU are exactly the GPU-weighted per-GPU
definitions when a cell's GPUs report the same samples (a rack exporter reports them together);
``E_i * fraction_i`` is evaluated per telemetry sample -- the finest resolution telemetry has --
which equals the tick-level product when a GPU's power is steady over the tick; ``useful`` is
exact. Every identity of the ledger holds either way.

Scopes: one additive (quantities x cells) matrix, summed without per-GPU work. Cells are kept
sorted by (tenant, job, topology), so (tenant, job) pairs are runs (one ``np.add.reduceat``),
and jobs and tenants are tiny sums of pairs; racks are one gather of each rack's first cell
(straight into the rack rows of the scope matrix) plus a gather-add per extra cell, taken in
topology order so (hall, generation) groups, halls and campuses are runs again. Orders are
cached until the cells change. Ratios (fractions, MFU, $/PFLOP-h) are derived once, for all
scopes together, from the summed quantities (:data:`twin.results.QUANTITIES` x scope rows).

Partial ticks and merging (scale-out). Several workers in one consumer group each own a set
of racks (those whose telemetry partitions they are assigned); every worker folds every
low-volume event, so every state has every GPU, cell, job and lease, but only the owned racks'
telemetry. ``compute_tick(..., racks=mask)`` zeroes the columns of cells on racks it does not
own before summing, so the scope sums are the owned racks' share; the state's bookkeeping (FLOP
carry, lease revenue accrual, cumulative money, resets in :func:`twin.ticks.close_tick`) is the
whole state's, as without a mask. The sums are additive over disjoint sets of cells: the
result's ``partial`` (:class:`twin.results.PartialTick`: the summed matrix before any ratio,
scope ids, meter, price, the revenue of leases holding no GPUs, straggler top lists of the
owned racks, counters) is what workers exchange, and :func:`merge_partials` sums the partials
row by row (matched by scope and id), takes the facility meter's overhead, the lost lease
revenue and the ``events`` counter once, re-ranks the straggler lists, and derives every ratio
from the merged sums -- so for one state split into disjoint masks the merge equals the whole
tick to float rounding (tests/unit/test_twin_partials.py). The per-worker result of a masked
tick applies the whole meter's overhead to the owned racks' IT energy: only the merge is the
facility.

What is not exact under scale-out: straggler attribution. A step's wait is charged to the GPUs
that set its pace among those whose telemetry the worker folded (:mod:`twin.jobs`), so with a
job's racks spread over workers each attributes among the GPUs it sees: the straggler cost
column and rankings of a merge are then per-worker attributions, not the whole job's.
Duplicate, late and unknown counters of low-volume events count once per worker.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from twin.gpus import MODEL_NAMES
from twin.results import (
    KPI_COLUMNS,
    QUANTITIES,
    SCOPES,
    Ledger,
    PartialTick,
    ScopeTable,
    Stragglers,
    TickResult,
)
from twin.state import ACC_E, ACC_T, COUNTERS, Cat, Mode, TwinState

__all__ = ["compute_tick", "merge_partials"]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
IP = npt.NDArray[np.intp]

_J_PER_MWH: Final = 3.6e9
_FLOP_PER_PFLOP_H: Final = 1e15 * 3600.0
_HOURS_PER_MONTH: Final = 730.0
_USD_PER_NS_MONTH: Final = 1e-9 / (_HOURS_PER_MONTH * 3600.0)  # $/ns from $/month
_FEW_LEASES: Final = 16  # up to this many, per-lease arithmetic runs in Python floats

# rows of the additive per-cell matrix
(
    _GPU_NS,
    _T0,
    _FLOPS,
    _PEAK,
    _GPU_J,
    _IT_J,
    _USEFUL,
    _KERNEL,
    _E0,
    _STRAG_S,
    _REVENUE,
) = (0, 1, 7, 8, 9, 10, 11, 12, 13, 18, 19)
_NQ: Final = len(QUANTITIES)
_RACK: Final = SCOPES.index("rack")
_GEN: Final = SCOPES.index("generation")
_TENANT: Final = SCOPES.index("tenant")
_COL: Final = {name: k for k, name in enumerate(KPI_COLUMNS)}
_GPUS, _POWER, _USD, _REV, _PFLOP_H, _STRAG_COST = (
    _COL[c]
    for c in (
        "gpus",
        "power_w",
        "energy_usd",
        "revenue_usd",
        "useful_pflop_h",
        "straggler_cost_gpu_s",
    )
)


_MAX_LAYERS: Final = 8
_MIN_LAYERED: Final = 256  # fewer items: one reduceat is cheaper than a few gathers


@dataclass(frozen=True, slots=True, eq=False)
class _Groups:
    """Items grouped by key: ``ids[g]`` owns ``perm[starts[g]:starts[g+1]]`` (``perm`` None:
    items already in key order). When every group is short (at most ``_MAX_LAYERS`` items, as
    with cells per rack), sums are one gather of each group's first item plus a few gathers of
    its second, third... items; otherwise ``np.add.reduceat``."""

    perm: IP | None
    starts: IP
    ids: I64
    first: IP | None  # item of rank 0 of each group (layered sums)
    layers: tuple[tuple[IP, IP], ...]  # (items of rank k, their groups), k >= 1
    group: IP  # the group of every item

    @staticmethod
    def of(keys: npt.NDArray[np.integer]) -> _Groups:
        empty = np.zeros(0, np.intp)
        if keys.size == 0:
            return _Groups(None, empty, np.zeros(0, np.int64), empty, (), empty)
        perm = np.argsort(keys, kind="stable")
        ordered = keys[perm]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ids = ordered[starts].astype(np.int64)
        sizes = np.diff(np.r_[starts, keys.size])
        sorted_group = np.repeat(np.arange(starts.size), sizes)
        group = np.empty(keys.size, np.intp)
        group[perm] = sorted_group
        identity = bool(np.array_equal(perm, np.arange(perm.size)))
        if int(sizes.max()) > _MAX_LAYERS or keys.size < _MIN_LAYERED:
            return _Groups(None if identity else perm, starts, ids, None, (), group)
        rank = np.arange(keys.size) - starts[sorted_group]
        layers = tuple(
            (perm[rank == k], sorted_group[rank == k]) for k in range(1, int(sizes.max()))
        )
        return _Groups(None if identity else perm, starts, ids, perm[starts], layers, group)

    @staticmethod
    def runs(keys: npt.NDArray[np.integer]) -> _Groups:
        """Group by runs of equal keys when every key's items are contiguous (no sort needed:
        the output keeps the items' order); otherwise like :meth:`of`."""
        if keys.size == 0:
            return _Groups.of(keys)
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        ids = keys[starts].astype(np.int64)
        if np.unique(ids).size != ids.size:
            return _Groups.of(keys)
        sizes = np.diff(np.r_[starts, keys.size])
        group = np.repeat(np.arange(starts.size), sizes)
        if int(sizes.max()) > _MAX_LAYERS or keys.size < _MIN_LAYERED:
            return _Groups(None, starts, ids, None, (), group)
        rank = np.arange(keys.size) - starts[group]
        items = np.arange(keys.size)
        layers = tuple((items[rank == k], group[rank == k]) for k in range(1, int(sizes.max())))
        return _Groups(None, starts, ids, starts, layers, group)

    def sum(self, q: F64, out: F64 | None = None) -> F64:
        """Per group, the sum of its items' columns of ``q`` (into ``out`` if given)."""
        if self.starts.size == 0:
            return np.zeros((q.shape[0], 0)) if out is None else out
        if self.first is not None:
            if out is None:
                out = q.take(self.first, axis=1, mode="wrap")
            else:
                out[:] = q.take(self.first, axis=1, mode="wrap")
            for items, groups in self.layers:
                out[:, groups] += q.take(items, axis=1, mode="wrap")
            return out
        data = q if self.perm is None else q.take(self.perm, axis=1, mode="wrap")
        if out is None:
            summed: F64 = np.add.reduceat(data, self.starts, axis=1)
            return summed
        np.add.reduceat(data, self.starts, axis=1, out=out)
        return out


@dataclass(frozen=True, slots=True, eq=False)
class _Plan:
    rack: _Groups  # cells -> racks, racks in topology order (campus, hall, model, rack)
    rack_index: I64  # the rack of each rack group
    hall_gen: _Groups  # racks -> (hall, generation)
    hall: _Groups  # (hall, generation) -> halls
    gen: _Groups  # (hall, generation) -> generations
    campus: _Groups  # halls -> campuses
    pair: _Groups  # cells -> (tenant, job)
    job_pairs: IP  # the pairs that have a job
    job: _Groups  # those pairs -> jobs
    tenant: _Groups  # pairs -> tenants
    cell_lease1: IP  # lease of each cell + 1 (0: none)
    lease_gpus: F64  # GPUs each lease holds (cells' members)
    rack_gpus: F64  # GPUs of each rack group (cells' members)
    names: tuple[tuple[str, ...], ...]  # ids of every scope, in SCOPES order
    blocks: tuple[slice, ...]  # each scope's rows (SCOPES order) among all scope rows
    gather: IP | None  # per scope row, the cell to take (racks: each one's first cell; else 0)


def _plan(state: TwinState) -> _Plan:
    key = (
        state.cells_version,
        state.n["cell"],
        state.n["rack"],
        state.n["lease"],
        state.n["tenant"],
        state.n["job"],
    )
    cached = state.cache.get("plan")
    if isinstance(cached, tuple) and cached[0] == key:
        plan: _Plan = cached[1]
        return plan
    n, n_rack = state.n["cell"], state.n["rack"]
    # racks ranked in topology order, so halls and campuses are runs of racks
    hall_of = state.rack_hall[:n_rack]
    by_topology = np.lexsort(
        (np.arange(n_rack), state.rack_model[:n_rack], hall_of, state.hall_campus[hall_of])
    )
    rank = np.empty(n_rack, np.int64)
    rank[by_topology] = np.arange(n_rack)
    rack = _Groups.of(rank[state.cell_rack[:n]])
    racks = by_topology[rack.ids].astype(np.int64)
    hall_gen = _Groups.runs(state.rack_hall[racks].astype(np.int64) * 256 + state.rack_model[racks])
    hall = _Groups.runs(hall_gen.ids // 256)
    gen = _Groups.of(hall_gen.ids % 256)
    campus = _Groups.runs(state.hall_campus[hall.ids])
    # cells are kept sorted by (tenant, job) first (see compact_cells): these are runs
    lease = state.cell_lease[:n]
    tenant_of = np.where(lease >= 0, state.lease_tenant[np.maximum(lease, 0)], 0).astype(np.int64)
    width = np.int64(state.n["job"] + 1)
    pair = _Groups.runs(tenant_of * width + state.cell_job[:n] + 1)
    pair_job = pair.ids % width - 1
    job_pairs = np.flatnonzero(pair_job >= 0)
    job = _Groups.of(pair_job[job_pairs])
    tenant = _Groups.of(pair.ids // width)
    names = (
        ("facility",),
        tuple(state.campus_ids[int(i)] for i in campus.ids),
        tuple(state.hall_ids[int(i)] for i in hall.ids),
        tuple(state.rack_ids[int(i)] for i in racks),
        tuple(MODEL_NAMES[int(i)] for i in gen.ids),
        tuple(state.job_ids[int(i)] for i in job.ids),
        tuple(state.tenant_ids),
    )
    lease1 = (lease + 1).astype(np.intp)
    blocks = _blocks(names)
    gather = None
    if rack.first is not None and n > 0:
        gather = np.zeros(blocks[-1].stop, np.intp)
        gather[blocks[_RACK]] = rack.first
    lease_gpus = np.bincount(lease1, state.cell_n[:n], minlength=state.n["lease"] + 1)[1:]
    plan = _Plan(
        rack,
        racks,
        hall_gen,
        hall,
        gen,
        campus,
        pair,
        job_pairs,
        job,
        tenant,
        lease1,
        lease_gpus.astype(np.float64),
        np.bincount(rack.group, state.cell_n[:n], minlength=racks.size).astype(np.float64),
        names,
        blocks,
        gather,
    )
    state.cache["plan"] = (key, plan)
    return plan


def _cell_quantities(
    state: TwinState, plan: _Plan, start_ns: int, end_ns: int
) -> tuple[F64, F64, F64]:
    """The additive per-cell matrix (``_NQ`` x cells), the FLOP carry, and per lease (2 x
    leases) the revenue accrued and the part accrued holding no GPUs. Runs under
    ``np.errstate(divide="ignore", invalid="ignore")`` (see :func:`compute_tick`)."""
    n = state.n["cell"]
    dt_ns = end_ns - start_ns
    acc = state.cell_acc[:, :n]
    t6 = acc[ACC_T : ACC_T + Cat.N]
    q = np.empty((_NQ, n))
    gpu_ns = q[_GPU_NS]
    np.multiply(state.cell_n[:n], dt_ns, out=gpu_ns, casting="unsafe")
    moved = bool(np.count_nonzero(state.cell_corr_ns[:n]))  # GPUs joined or left cells
    if moved:
        gpu_ns += state.cell_corr_ns[:n]
        np.maximum(gpu_ns, 0.0, out=gpu_ns)
    # time: normalized to the cell's observed sample time, weighted by its GPU-time
    observed = np.add.reduce(t6, axis=0)
    t = q[_T0 : _T0 + 6]
    if np.count_nonzero(observed) == n:  # time is never negative
        np.multiply(t6, np.divide(gpu_ns, observed), out=t)
    else:  # no sample covered some cells: fall back to their status
        seen = observed > 0
        np.multiply(t6, np.divide(gpu_ns, observed, out=np.zeros(n), where=seen), out=t)
        blind = np.flatnonzero(~seen)
        mode = state.cell_mode[blind]
        row = np.where(mode == Mode.DOWN, 5, np.where(mode == Mode.UNALLOC, 4, 3))
        q[_T0 + row, blind] = gpu_ns[blind]
    # energy: board energy by category plus the share of the rack's non-GPU energy
    ledger = q[_KERNEL : _KERNEL + 6]  # compute energy (kernel row, for now), strag, ... down
    np.multiply(acc[ACC_E : ACC_E + Cat.N], 1e-6, out=ledger)
    board = q[_GPU_J]
    np.add.reduce(ledger, axis=0, out=board)
    it = q[_IT_J]
    if np.count_nonzero(state.rack_pdu_seen[: state.n["rack"]]):
        group = plan.rack.group
        n_racks = plan.rack_index.size
        rack_ns: F64
        if moved:
            rack_ns = np.bincount(group, gpu_ns, minlength=n_racks).astype(np.float64, copy=False)
        else:
            rack_ns = plan.rack_gpus * float(dt_ns)
        # a rack without a PDU reading has rack_pdu_j 0 (both reset together), so none here
        non_gpu = state.rack_pdu_j.take(plan.rack_index, mode="wrap")
        non_gpu -= np.bincount(group, board, minlength=n_racks)
        np.maximum(non_gpu, 0.0, out=non_gpu)
        # per GPU-ns; GPU-time is whole ns, so a rack without any has none to share it with
        non_gpu /= np.maximum(rack_ns, 1.0, out=rack_ns)
        per_ns = non_gpu.take(group, mode="wrap")
        ledger += np.multiply(t, per_ns)
        np.multiply(per_ns, gpu_ns, out=it)
        it += board
    else:
        it[:] = board
    # credited FLOPs, capped at peak with carry; useful energy
    peak = q[_PEAK]
    np.multiply(state.cell_peak[:n], gpu_ns, out=peak)
    peak *= 1e-9
    carry = state.cell_flops[:n] + state.cell_carry[:n]
    flops = q[_FLOPS]
    np.minimum(carry, peak, out=flops)
    carry -= flops
    useful = q[_USEFUL]
    np.maximum(peak, 1e-300, out=useful)  # flops <= peak, so a zero peak gives 0 / tiny = 0
    np.divide(flops, useful, out=useful)
    useful *= it
    q[_KERNEL] -= useful
    q[_STRAG_S] = state.cell_strag_s[:n]
    lease_rev = _revenue(
        state, plan, start_ns, end_ns, gpu_ns=gpu_ns, moved=moved, per_cell=q[_REVENUE]
    )
    return q, carry, lease_rev


def _revenue(
    state: TwinState,
    plan: _Plan,
    start_ns: int,
    end_ns: int,
    *,
    gpu_ns: F64,
    moved: bool,
    per_cell: F64,
) -> F64:
    """Lease revenue over the tick spread over each lease's GPU-time: per cell (into
    ``per_cell``), and per lease as (accrued, accrued by leases holding no GPUs)."""
    n_lease = state.n["lease"]
    if n_lease == 0:
        per_cell.fill(0.0)
        return np.zeros((2, 0))
    if moved:
        counted = np.bincount(plan.cell_lease1, gpu_ns, minlength=n_lease + 1)[1:]
        lease_ns = counted.astype(np.float64, copy=False)
    else:
        lease_ns = plan.lease_gpus[:n_lease] * float(end_ns - start_ns)
    out = np.empty((2, n_lease))
    per = np.zeros(n_lease + 1)  # per[0]: no lease
    if n_lease <= _FEW_LEASES:  # the same arithmetic in Python floats: fewer numpy calls
        usd = state.lease_usd_per_month[:n_lease].tolist()
        los = state.lease_start_ns[:n_lease].tolist()
        his = state.lease_eff_end_ns[:n_lease].tolist()
        held_ns = lease_ns.tolist()
        revs, lost, pers = [], [], [0.0]
        for k in range(n_lease):
            rev = float(min(his[k], end_ns) - max(los[k], start_ns))
            rev = max(rev, 0.0) * usd[k]
            rev *= _USD_PER_NS_MONTH
            revs.append(rev)
            lost.append(0.0 if held_ns[k] > 0 else rev)
            pers.append(rev / held_ns[k] if held_ns[k] > 0 else 0.0)
        out[0] = revs
        out[1] = lost
        per[:] = pers
    else:
        lo = np.maximum(state.lease_start_ns[:n_lease], start_ns)
        hi = np.minimum(state.lease_eff_end_ns[:n_lease], end_ns)
        rev = out[0]
        np.subtract(hi, lo, out=rev, casting="unsafe")
        np.maximum(rev, 0.0, out=rev)
        rev *= state.lease_usd_per_month[:n_lease]
        rev *= _USD_PER_NS_MONTH
        held = lease_ns > 0
        np.divide(rev, lease_ns, out=per[1:], where=held)
        np.multiply(rev, ~held, out=out[1])
    np.multiply(per.take(plan.cell_lease1, mode="wrap"), gpu_ns, out=per_cell)
    return out


def _scope_sums(plan: _Plan, q: F64) -> F64:
    """The per-cell matrix ``q`` summed per scope row (``_NQ`` x rows, SCOPES order). Racks
    are gathered straight into their rows of the output (other rows are filled after)."""
    blocks = plan.blocks
    rows = blocks[-1].stop
    if plan.gather is None:
        s = np.empty((_NQ, rows))
        racks = s[:, blocks[_RACK]]
        racks[:] = plan.rack.sum(q)
    else:
        s = q.take(plan.gather, axis=1, mode="wrap")
        at = blocks[_RACK].start
        for items, groups in plan.rack.layers:
            s[:, at + groups] += q.take(items, axis=1, mode="wrap")
        racks = s[:, blocks[_RACK]]
    hall_gens = plan.hall_gen.sum(racks)
    halls = plan.hall.sum(hall_gens, s[:, blocks[2]])
    plan.gen.sum(hall_gens, s[:, blocks[_GEN]])
    np.add.reduce(plan.campus.sum(halls, s[:, blocks[1]]), axis=1, out=s[:, 0])
    pairs = plan.pair.sum(q)
    plan.job.sum(pairs.take(plan.job_pairs, axis=1), s[:, blocks[5]])
    # every registered tenant gets a row
    tenants = s[:, blocks[_TENANT]]
    if plan.tenant.ids.size == tenants.shape[1]:
        plan.tenant.sum(pairs, tenants)
    else:
        tenants[:] = 0.0
        tenants[:, plan.tenant.ids] = plan.tenant.sum(pairs)
    return s


def _derive(
    s: F64,
    dt_ns: float,
    *,
    overhead_ratio: float,
    price: float,
    m_ref: float,
    lost: F64,
    tenant_rows: slice,
) -> F64:
    """KPI_COLUMNS rows from summed quantities ``s`` (``_NQ`` x rows, facility first); ``lost``
    is the revenue of leases holding no GPUs, per tenant row. No Python per row. Runs under
    ``np.errstate(divide="ignore", invalid="ignore")``: ratios of empty rows are NaN."""
    k = s.shape[1]
    out = np.empty((len(KPI_COLUMNS), k))
    gpu_ns = s[_GPU_NS]
    np.multiply(gpu_ns, 1.0 / dt_ns, out=out[_GPUS])
    # time by category is 0 where GPU-time is: 0 x inf = NaN
    np.multiply(
        s[_T0 : _T0 + 6], np.divide(1.0, gpu_ns), out=out[_COL["compute"] : _COL["down"] + 1]
    )
    # flops <= peak always (credit is capped), so a zero peak gives 0 / tiny = 0
    mfu = out[_COL["mfu"]]
    np.divide(s[_FLOPS], np.maximum(s[_PEAK], 1e-300), out=mfu)
    out[_COL["flops"] : _COL["it_energy_j"] + 1] = s[_FLOPS : _IT_J + 1]
    it = out[_COL["it_energy_j"]]
    overhead = out[_COL["overhead_j"]]
    np.multiply(it, overhead_ratio, out=overhead)
    energy = out[_COL["energy_j"]]
    np.add(it, overhead, out=energy)
    np.multiply(energy, 1e9 / dt_ns, out=out[_POWER])
    out[_COL["useful_j"] : _COL["down_j"] + 1] = s[_USEFUL : _USEFUL + 7]
    recoverable = out[_COL["recoverable_j"]]
    np.multiply(mfu, -1.0 / m_ref, out=recoverable)
    recoverable += 1.0
    np.maximum(recoverable, 0.0, out=recoverable)
    recoverable *= it
    np.multiply(energy, price / _J_PER_MWH, out=out[_USD])
    revenue = out[_REV]
    revenue[:] = s[_REVENUE]
    if np.count_nonzero(lost):  # revenue of leases holding no GPUs goes to their tenants
        revenue[0] += lost.sum()
        revenue[tenant_rows] += lost
    pflop_h = out[_PFLOP_H]
    np.multiply(s[_FLOPS], 1.0 / _FLOP_PER_PFLOP_H, out=pflop_h)
    # 1 / pflop_h where positive, NaN where 0: (0 / 0) / 0
    inv_h = np.divide(pflop_h, pflop_h)
    np.divide(inv_h, pflop_h, out=inv_h)
    # rows revenue_usd, energy_usd (reversed) -> usd_per_useful..., energy_usd_per_useful...
    np.multiply(
        out[_COL["revenue_usd"] : _COL["energy_usd"] - 1 : -1],
        inv_h,
        out=out[_COL["usd_per_useful_pflop_h"] : _COL["energy_usd_per_useful_pflop_h"] + 1],
    )
    out[_STRAG_COST] = s[_STRAG_S]
    return out


def _owned_racks(state: TwinState, racks: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    n_rack = state.n["rack"]
    owned = np.asarray(racks)
    if owned.dtype != np.bool_ or owned.shape != (n_rack,):
        raise ValueError(
            f"racks must be a bool array over the state's {n_rack} racks, "
            f"got {owned.dtype} of shape {owned.shape}"
        )
    return owned


def _top(
    costs: F64, rack_of: npt.NDArray[np.integer] | None, owned: npt.NDArray[np.bool_], n: int
) -> I32:
    """The ``n`` items of highest positive cost on owned racks (``rack_of``: each item's rack;
    None: the items are racks), ties to the lowest index (:func:`twin.jobs.top_costs`)."""
    cand = np.flatnonzero(costs > 0)
    rack = cand if rack_of is None else rack_of[cand]
    cand = cand[(rack >= 0) & owned[np.maximum(rack, 0)]]
    order = np.lexsort((cand, -costs[cand]))[:n]
    out: I32 = cand[order].astype(np.int32)
    return out


def _partial(
    state: TwinState,
    plan: _Plan,
    start_ns: int,
    end_ns: int,
    *,
    sums: F64,
    lease_lost: F64,
    owned: npt.NDArray[np.bool_] | None,
) -> PartialTick:
    n_tenant = len(plan.names[-1])
    lost: F64
    if np.count_nonzero(lease_lost):
        n_lease = state.n["lease"]
        lost = np.bincount(state.lease_tenant[:n_lease], lease_lost, minlength=n_tenant).astype(
            np.float64, copy=False
        )
    else:
        lost = np.zeros(n_tenant)
    gpus, racks = state.strag_top, state.strag_top_racks
    if owned is not None:  # the top lists of the owned racks
        if not owned[state.gpu_rack[gpus]].all():
            n_gpu = state.n["gpu"]
            gpus = _top(state.gpu_strag_s[:n_gpu], state.gpu_rack[:n_gpu], owned, state.top_n)
        if not owned[racks].all():
            racks = _top(state.rack_strag_s[: state.n["rack"]], None, owned, state.top_n)
    return PartialTick(
        start_ns=start_ns,
        end_ns=end_ns,
        ids=plan.names,
        quantities=QUANTITIES,
        sums=sums,
        lost_revenue_usd=lost,
        meter_total_j=state.meter_total_j,
        meter_it_j=state.meter_it_j,
        usd_per_mwh=state.usd_per_mwh,
        m_ref=state.m_ref,
        top_n=state.top_n,
        straggler_gpu_index=gpus.copy(),
        straggler_gpu_cost_gpu_s=state.gpu_strag_s[gpus],
        straggler_rack_ids=tuple([state.rack_ids[r] for r in racks.tolist()]),
        straggler_rack_index=racks.copy(),
        straggler_rack_cost_gpu_s=state.rack_strag_s[racks],
        counts=dict(zip(COUNTERS, state.tick_counts.tolist(), strict=True)),
    )


def _blocks(ids: tuple[tuple[str, ...], ...]) -> tuple[slice, ...]:
    bounds = np.cumsum([0] + [len(block) for block in ids]).tolist()
    return tuple(slice(a, b) for a, b in itertools.pairwise(bounds))


def _result(p: PartialTick, blocks: tuple[slice, ...] | None = None) -> TickResult:
    """Every KPI of every scope, the ledger and the rankings, from a partial's sums. Runs under
    ``np.errstate(divide="ignore", invalid="ignore")``."""
    dt_ns = float(p.end_ns - p.start_ns)
    s = p.sums
    overhead = max(p.meter_total_j - p.meter_it_j, 0.0)
    it_total = float(s[_IT_J, 0])
    ratio = overhead / it_total if it_total > 0 else 0.0
    tables: dict[str, ScopeTable] = {}
    blocks = _blocks(p.ids) if blocks is None else blocks
    derived = _derive(
        s,
        dt_ns,
        overhead_ratio=ratio,
        price=p.usd_per_mwh,
        m_ref=p.m_ref,
        lost=p.lost_revenue_usd,
        tenant_rows=blocks[_TENANT],
    )
    if it_total <= 0:
        derived[_COL["overhead_j"], 0] = overhead
        derived[_COL["energy_j"], 0] = overhead
    for scope, ids, rows in zip(SCOPES, p.ids, blocks, strict=True):
        tables[scope] = ScopeTable(scope, ids, derived[:, rows])
    f = s[:, 0].tolist()
    ledger = Ledger(
        facility_j=it_total + overhead,
        useful_j=f[_USEFUL],
        kernel_inefficiency_j=f[_KERNEL],
        straggler_wait_j=f[_E0],
        comm_stall_j=f[_E0 + 1],
        allocated_idle_j=f[_E0 + 2],
        unallocated_j=f[_E0 + 3],
        down_j=f[_E0 + 4],
        overhead_j=overhead,
        it_j=it_total,
        meter_total_j=p.meter_total_j,
        meter_it_j=p.meter_it_j,
    )
    # generations ranked by straggler cost (ties: in scope order), positive costs only
    gens = s[_STRAG_S, blocks[_GEN]].tolist()
    order = sorted(range(len(gens)), key=lambda g: -gens[g])
    order = [g for g in order if gens[g] > 0][: p.top_n]
    gen_ids = p.ids[_GEN]
    stragglers = Stragglers(
        gpu_index=p.straggler_gpu_index,
        gpu_cost_gpu_s=p.straggler_gpu_cost_gpu_s,
        rack_ids=p.straggler_rack_ids,
        rack_cost_gpu_s=p.straggler_rack_cost_gpu_s,
        generation_ids=tuple([gen_ids[g] for g in order]),
        generation_cost_gpu_s=np.array([gens[g] for g in order], dtype=np.float64),
    )
    return TickResult(
        start_ns=p.start_ns,
        end_ns=p.end_ns,
        dt_s=dt_ns * 1e-9,
        usd_per_mwh=p.usd_per_mwh,
        m_ref=p.m_ref,
        scopes=tables,
        ledger=ledger,
        stragglers=stragglers,
        counts=p.counts,
        partial=p,
    )


def compute_tick(
    state: TwinState,
    start_ns: int,
    end_ns: int,
    racks: npt.NDArray[np.bool_] | None = None,
) -> tuple[TickResult, F64, F64]:
    """All KPIs of the open tick as if it closed at ``end_ns``. Pure: reads the state only
    (apart from its plan cache). Returns the result, the per-cell FLOP carry and the revenue
    each lease accrued in the tick.

    ``racks``: a bool array over the state's racks, the racks this worker owns (None: all).
    Cells of other racks add nothing to any scope's sums; the carry and lease revenue are
    those of every cell, as without ``racks``. The result's ``partial`` is what
    :func:`merge_partials` merges with the other workers' partials."""
    owned = None if racks is None else _owned_racks(state, racks)
    plan = _plan(state)
    with np.errstate(divide="ignore", invalid="ignore"):
        q, carry, lease_rev = _cell_quantities(state, plan, start_ns, end_ns)
        if owned is not None:
            q *= owned[state.cell_rack[: state.n["cell"]]].astype(np.float64)
        sums = _scope_sums(plan, q)
        partial = _partial(
            state, plan, start_ns, end_ns, sums=sums, lease_lost=lease_rev[1], owned=owned
        )
        result = _result(partial, plan.blocks)
    return result, carry, lease_rev[0]


def _aligned_sums(p: PartialTick) -> F64:
    """``p.sums`` with its rows in QUANTITIES order."""
    if p.quantities == QUANTITIES:
        return p.sums
    missing = [name for name in QUANTITIES if name not in p.quantities]
    if missing:
        raise ValueError(f"partial tick lacks the quantities {missing}")
    out: F64 = p.sums[[p.quantities.index(name) for name in QUANTITIES]]
    return out


def _union_ids(
    partials: Sequence[PartialTick],
) -> tuple[tuple[tuple[str, ...], ...], list[IP]]:
    """Each scope's ids over all partials (the first partial's order, then new ids in the
    order they appear), and per partial the merged row of each of its rows."""
    first = partials[0].ids
    if all(p.ids == first for p in partials):
        return first, []
    merged: list[dict[str, int]] = [{} for _ in SCOPES]
    for p in partials:
        if len(p.ids) != len(SCOPES):
            raise ValueError(f"partial tick has {len(p.ids)} scope kinds, not {len(SCOPES)}")
        for index, ids in zip(merged, p.ids, strict=True):
            for scope_id in ids:
                index.setdefault(scope_id, len(index))
    offsets = np.cumsum([0] + [len(index) for index in merged]).tolist()
    rows: list[IP] = []
    for p in partials:
        cols = [
            np.fromiter((at + index[i] for i in ids), np.intp, len(ids))
            for at, index, ids in zip(offsets, merged, p.ids, strict=False)
        ]
        rows.append(np.concatenate(cols))
    return tuple(tuple(index) for index in merged), rows


def merge_partials(partials: Sequence[PartialTick]) -> TickResult:
    """The facility's tick from the partial ticks of workers owning disjoint sets of racks
    (see the module docstring). Rows are matched by (scope, id) and their quantities summed;
    the fields every worker shares are taken once, from the first partial: the facility meter
    (hence the overhead), the price, ``m_ref``, the revenue of leases holding no GPUs and the
    ``events`` counter. The other counters ("messages", "samples", "duplicates", "late",
    "unknown") are summed: telemetry's are exact; low-volume events' duplicates, late events
    and unknown references count once per worker. The straggler top lists are the union of
    the partials' lists, re-ranked (highest cost first, ties to the lowest index) and cut to
    the largest ``top_n``; a GPU or rack listed by several partials has its costs summed.
    Raises ValueError when the partials are not of the same tick."""
    if not partials:
        raise ValueError("no partial ticks to merge")
    first = partials[0]
    for p in partials[1:]:
        if (p.start_ns, p.end_ns) != (first.start_ns, first.end_ns):
            raise ValueError(
                "partial ticks of different ticks cannot be merged: "
                f"[{first.start_ns}, {first.end_ns}) and [{p.start_ns}, {p.end_ns})"
            )
    ids, rows = _union_ids(partials)
    if rows:
        sums = np.zeros((_NQ, sum(len(block) for block in ids)))
        for p, cols in zip(partials, rows, strict=True):
            sums[:, cols] += _aligned_sums(p)
        tenant_rows = rows[0][_blocks(first.ids)[_TENANT]]
        lost = np.zeros(len(ids[_TENANT]))
        lost[tenant_rows - _blocks(ids)[_TENANT].start] = first.lost_revenue_usd
    else:
        sums = _aligned_sums(first).copy()
        for p in partials[1:]:
            sums += _aligned_sums(p)
        lost = first.lost_revenue_usd
    top_n = max(p.top_n for p in partials)
    gpu, gpu_cost = _merge_top(
        [p.straggler_gpu_index for p in partials],
        [p.straggler_gpu_cost_gpu_s for p in partials],
        top_n,
    )
    rack_names: dict[int, str] = {}
    for p in partials:
        rack_names.update(zip(p.straggler_rack_index.tolist(), p.straggler_rack_ids, strict=True))
    rack, rack_cost = _merge_top(
        [p.straggler_rack_index for p in partials],
        [p.straggler_rack_cost_gpu_s for p in partials],
        top_n,
    )
    counts = {name: sum(p.counts.get(name, 0) for p in partials) for name in first.counts}
    if "events" in counts:
        counts["events"] = first.counts["events"]
    merged = PartialTick(
        start_ns=first.start_ns,
        end_ns=first.end_ns,
        ids=ids,
        quantities=QUANTITIES,
        sums=sums,
        lost_revenue_usd=lost,
        meter_total_j=first.meter_total_j,
        meter_it_j=first.meter_it_j,
        usd_per_mwh=first.usd_per_mwh,
        m_ref=first.m_ref,
        top_n=top_n,
        straggler_gpu_index=gpu,
        straggler_gpu_cost_gpu_s=gpu_cost,
        straggler_rack_ids=tuple([rack_names[r] for r in rack.tolist()]),
        straggler_rack_index=rack,
        straggler_rack_cost_gpu_s=rack_cost,
        counts=counts,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return _result(merged)


def _merge_top(index: list[I32], cost: list[F64], n: int) -> tuple[I32, F64]:
    """Union of ranked top lists, re-ranked: highest cost first, ties to the lowest index."""
    idx = np.concatenate(index).astype(np.int64)
    costs = np.concatenate(cost).astype(np.float64)
    uniq, inverse = np.unique(idx, return_inverse=True)
    if uniq.size < idx.size:  # listed by several partials: add their costs
        costs = np.bincount(inverse, costs, minlength=uniq.size).astype(np.float64, copy=False)
        idx = uniq
    order = np.lexsort((idx, -costs))[:n]
    return idx[order].astype(np.int32), costs[order]
