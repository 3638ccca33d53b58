"""Partial ticks for scale-out: workers owning disjoint racks merge into the facility's tick.

- One state, its racks split into disjoint masks: merging the masked ticks' partials gives the
  whole tick (every KPI of every scope, the ledger, the straggler rankings, the counters).
- A single partial merged is the tick itself; partials of different ticks do not merge.
- Property: any random split of the racks of a random log's state (test_twin_properties' logs:
  leases by index and by count, failures, blind cells, late and duplicate events) merges to the
  whole tick; closing a tick with a mask leaves the state exactly as closing it without one.
- Two genuinely different workers (every low-volume event folded by both, each one's telemetry
  only for its own racks) merge to the state that folded everything.
- ``PartialTick.to_dict`` / ``from_dict`` round-trip exactly through orjson.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import numpy as np
import numpy.typing as npt
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.pipeline import take_messages
from tests.unit.test_twin_properties import Item, batches, logs
from twin import (
    KPI_COLUMNS,
    QUANTITIES,
    PartialTick,
    TickResult,
    TwinState,
    close_tick,
    fold_events,
    merge_partials,
    state_checksum,
)
from twin import synthetic as syn
from twin.batches import Batch
from twin.kernels import compute_tick

S = 1_000_000_000
T0 = 1_750_000_000 * S
# 300 eight-GPU H100 racks (so the kernels' layered rack sums run: >= 256 cells), 8 H200 and
# 4 GB200 racks, over 2 campuses x 2 halls; jobs and leases cut racks into several cells
PARTS = (("H100", 2_400, 8), ("H200", 512, 64), ("GB200", 288, 72))
N_JOBS = 7
Mask = npt.NDArray[np.bool_]


def _log(owned: Mask | None = None) -> tuple[list[Batch], syn.Layout]:
    """The synthetic facility's log over 16 s (one tick closes, one stays open); with
    ``owned``, telemetry of those racks only (every other event in full)."""
    rng = np.random.default_rng(11)
    layout = syn.facility(PARTS, campuses=2, halls_per_campus=2, ts_ns=T0)
    events, job_of = syn.start_jobs(layout, N_JOBS, ts_ns=T0)
    tokens = syn.tokens_for_mfu(job_of, N_JOBS, 0.35)
    log: list[Batch] = [list(layout.events), list(events)]
    for second in range(16):
        t = T0 + second * S
        telemetry = syn.telemetry(layout, t, second, rng=rng, job_of_gpu=job_of)
        if owned is not None:
            telemetry = take_messages(telemetry, np.flatnonzero(owned))
        log.append(telemetry)
        if second % 2 == 1:
            log.append(syn.job_steps(tokens, ts_ns=t + S // 2, seq=second * N_JOBS, step=second))
        log.append(syn.power_readings(layout, t, second, it_power_w=1.6e6, total_power_w=1.9e6))
    return log, layout


def _state(owned: Mask | None = None) -> TwinState:
    state = TwinState()
    results = fold_events(state, _log(owned)[0])
    assert len(results) == 1, "one tick closed, the second one open"
    return state


@pytest.fixture(scope="module")
def state() -> TwinState:
    return _state()


def _tick(state: TwinState, racks: Mask | None = None) -> TickResult:
    return compute_tick(state, state.tick_start_ns, state.tick_end_ns, racks)[0]


def _masks(n_rack: int, workers: int, seed: int) -> list[Mask]:
    owner = np.random.default_rng(seed).integers(0, workers, n_rack)
    return [owner == w for w in range(workers)]


def _assert_same(
    merged: TickResult,
    whole: TickResult,
    *,
    stragglers: bool = True,
    counts: bool = True,
    rtol: float = 1e-9,
) -> None:
    """``counts``: False when the partials come from one state (each then carries that
    state's counters: they count a worker's folding, not its racks)."""
    assert (merged.start_ns, merged.end_ns, merged.dt_s) == (
        whole.start_ns,
        whole.end_ns,
        whole.dt_s,
    )
    columns = [k for k, c in enumerate(KPI_COLUMNS) if stragglers or c != "straggler_cost_gpu_s"]
    for scope, table in whole.scopes.items():
        got = merged.scopes[scope]
        assert got.ids == table.ids, scope
        np.testing.assert_allclose(
            got.columns[columns], table.columns[columns], rtol=rtol, atol=1e-9, err_msg=scope
        )
    for field in type(whole.ledger).__slots__:
        assert getattr(merged.ledger, field) == pytest.approx(
            getattr(whole.ledger, field), rel=rtol, abs=1e-9
        ), field
    if counts:
        assert merged.counts == whole.counts
    if stragglers:
        a, b = merged.stragglers, whole.stragglers
        assert a.gpu_index.tolist() == b.gpu_index.tolist()
        np.testing.assert_allclose(a.gpu_cost_gpu_s, b.gpu_cost_gpu_s, rtol=rtol)
        assert a.rack_ids == b.rack_ids
        np.testing.assert_allclose(a.rack_cost_gpu_s, b.rack_cost_gpu_s, rtol=rtol)
        assert a.generation_ids == b.generation_ids
        np.testing.assert_allclose(a.generation_cost_gpu_s, b.generation_cost_gpu_s, rtol=rtol)


def test_the_benchmark_kind_of_state_has_what_the_merge_must_get_right(state: TwinState) -> None:
    whole = _tick(state)
    assert state.n["cell"] > state.n["rack"] >= 256  # multi-cell racks, layered rack sums
    assert whole.stragglers.gpu_index.size == state.top_n  # straggler rankings to merge
    assert whole.ledger.overhead_j > 0
    assert whole.scope("tenant").column("revenue_usd").sum() > 0


@pytest.mark.parametrize(("workers", "seed"), [(2, 1), (3, 2), (3, 3)])
def test_rack_split_of_one_state_merges_to_the_whole_tick(
    state: TwinState, workers: int, seed: int
) -> None:
    whole = _tick(state)
    masks = _masks(state.n["rack"], workers, seed)
    partials = [_tick(state, m).partial for m in masks]
    merged = merge_partials(partials)
    _assert_same(merged, whole, counts=False)
    np.testing.assert_allclose(merged.partial.sums, whole.partial.sums, rtol=1e-9, atol=1e-9)
    # every worker's partial has every row; the racks it does not own sum to zero
    for m, p in zip(masks, partials, strict=True):
        racks = p.sums[:, slice(*_rack_rows(p))]
        order = [state.rack_ids.index(r) for r in p.ids[3]]
        assert not racks[:, ~m[order]].any()


def _rack_rows(p: PartialTick) -> tuple[int, int]:
    start = sum(len(ids) for ids in p.ids[:3])
    return start, start + len(p.ids[3])


def test_the_carry_and_lease_revenue_do_not_depend_on_the_mask(state: TwinState) -> None:
    _, carry, revenue = compute_tick(state, state.tick_start_ns, state.tick_end_ns)
    mask = _masks(state.n["rack"], 2, 5)[0]
    _, carry_m, revenue_m = compute_tick(state, state.tick_start_ns, state.tick_end_ns, mask)
    assert np.array_equal(carry, carry_m)
    assert np.array_equal(revenue, revenue_m)


def test_a_single_partial_merges_to_the_tick_itself(state: TwinState) -> None:
    whole = _tick(state)
    merged = merge_partials([whole.partial])
    _assert_same(merged, whole, rtol=0.0)
    for scope, table in whole.scopes.items():
        assert np.array_equal(merged.scopes[scope].columns, table.columns, equal_nan=True)


def test_partials_of_different_ticks_do_not_merge(state: TwinState) -> None:
    a = _tick(state).partial
    b = compute_tick(state, state.tick_start_ns, state.tick_end_ns + S)[0].partial
    with pytest.raises(ValueError, match="different ticks"):
        merge_partials([a, b])
    with pytest.raises(ValueError, match="no partial"):
        merge_partials([])


def test_a_mask_of_the_wrong_length_is_refused(state: TwinState) -> None:
    with pytest.raises(ValueError, match="bool array over the state's"):
        _tick(state, np.ones(state.n["rack"] - 1, bool))


def test_rows_are_matched_by_id_when_workers_know_different_racks(state: TwinState) -> None:
    """A worker that has not yet seen a rack lacks its row: rows are matched by (scope, id)."""
    whole = _tick(state)
    a, b = (_tick(state, m).partial for m in _masks(state.n["rack"], 2, 7))
    # b lacks its last rack row (a rack a owns) and lists its campus rows in reverse
    rack_lo, rack_hi = _rack_rows(b)
    if b.sums[:, rack_hi - 1].any():
        a, b = b, a
    assert not b.sums[:, rack_hi - 1].any()
    assert len(b.ids[1]) == 2
    assert rack_lo > 3
    keep = np.r_[0, 2, 1, 3 : rack_hi - 1, rack_hi : b.sums.shape[1]]
    ids = list(b.ids)
    ids[1] = (b.ids[1][1], b.ids[1][0])
    ids[3] = b.ids[3][:-1]
    shuffled = PartialTick(**{**_fields(b), "ids": tuple(ids), "sums": b.sums[:, keep]})
    merged = merge_partials([a, shuffled])
    _assert_same(merged, whole, counts=False)
    # a row only the second partial has comes after the first partial's rows
    merged_other = merge_partials([shuffled, a])
    assert merged_other.scope("rack").ids[-1] == b.ids[3][-1]
    assert merged_other.kpi("rack", b.ids[3][-1], "it_energy_j") == pytest.approx(
        whole.kpi("rack", b.ids[3][-1], "it_energy_j"), rel=1e-12
    )


def _fields(p: PartialTick) -> dict[str, Any]:
    return {name: getattr(p, name) for name in PartialTick.__slots__}


def test_partial_to_dict_round_trips_exactly_through_orjson(state: TwinState) -> None:
    p = _tick(state, _masks(state.n["rack"], 2, 3)[0]).partial
    d = orjson.loads(orjson.dumps(p.to_dict()))
    back = PartialTick.from_dict(d)
    for name in PartialTick.__slots__:
        x, y = getattr(p, name), getattr(back, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, name
            assert np.array_equal(x, y), name
        else:
            assert x == y, name
    assert back.quantities == QUANTITIES
    # and merges like the original
    a = merge_partials([p])
    b = merge_partials([back])
    for scope, table in a.scopes.items():
        assert np.array_equal(b.scopes[scope].columns, table.columns, equal_nan=True)


def test_quantities_in_another_order_are_aligned_by_name(state: TwinState) -> None:
    p = _tick(state).partial
    order = np.arange(len(QUANTITIES))[::-1]
    reordered = PartialTick(
        **{
            **_fields(p),
            "quantities": tuple(QUANTITIES[k] for k in order),
            "sums": p.sums[order],
        }
    )
    merged = merge_partials([reordered])
    for scope, table in _tick(state).scopes.items():
        assert np.array_equal(merged.scopes[scope].columns, table.columns, equal_nan=True)
    with pytest.raises(ValueError, match="lacks the quantities"):
        merge_partials([PartialTick(**{**_fields(p), "quantities": ("x",) * len(QUANTITIES)})])


def test_two_workers_each_with_its_own_telemetry_merge_to_one_state_with_all(
    state: TwinState,
) -> None:
    """Every low-volume event (topology, jobs, leases, steps, PDU and meter readings) reaches
    both workers; each folds the telemetry of its own racks only. The merged tick equals the
    tick of the state that folded everything -- except straggler attribution, which needs
    every GPU of a job: each worker attributes a step's wait among the GPUs it sees, so the
    straggler cost column and the rankings legitimately differ and are left out here."""
    whole = _tick(state)
    layout = _log()[1]
    owner = np.random.default_rng(9).integers(0, 2, len(layout.rack_ids))
    owned = [owner == w for w in range(2)]
    partials = []
    for mask in owned:
        worker = _state(mask)
        racks = np.zeros(worker.n["rack"], bool)
        racks[[worker.rack_ids.index(layout.rack_ids[r]) for r in np.flatnonzero(mask)]] = True
        partials.append(_tick(worker, racks).partial)
    merged = merge_partials(partials)
    _assert_same(merged, whole, stragglers=False)


@st.composite
def split_logs(draw: st.DrawFn) -> tuple[list[Item], list[int]]:
    log = draw(logs())
    owner = draw(st.lists(st.integers(0, 2), min_size=3, max_size=3))
    return log, owner


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=split_logs())
def test_any_rack_split_of_a_random_log_merges_and_evolves_the_state_the_same(
    case: tuple[list[Item], list[int]],
) -> None:
    log, owner = case
    state = TwinState()
    fold_events(state, batches(log, set()))
    if state.tick_start_ns < 0:
        return
    twin = state.copy()
    n_rack = state.n["rack"]
    owners = np.array(owner[:n_rack])
    masks = [owners == w for w in range(3)]
    whole = _tick(state)
    _assert_same(merge_partials([_tick(state, m).partial for m in masks]), whole, counts=False)
    # closing with a mask: the owned racks' sums, and the state evolves as without the mask
    closed = close_tick(twin, racks=masks[0])
    reference = close_tick(state)
    assert state_checksum(twin) == state_checksum(state)
    lo, hi = _rack_rows(reference.partial)
    owned = masks[0][[state.rack_ids.index(r) for r in reference.partial.ids[3]]]
    np.testing.assert_allclose(
        closed.partial.sums[:, lo:hi], reference.partial.sums[:, lo:hi] * owned, atol=1e-9
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(log=logs())
def test_per_lease_revenue_in_python_floats_is_the_numpy_arithmetic(log: list[Item]) -> None:
    """Up to ``_FEW_LEASES`` leases the kernels do the per-lease arithmetic in Python floats;
    it must give exactly what the vectorized path gives (leases held, by count, lapsed)."""
    state = TwinState()
    fold_events(state, batches(log, set()))
    if state.tick_start_ns < 0:
        return
    start, end = state.tick_start_ns, state.tick_end_ns
    few, carry, revenue = compute_tick(state, start, end)
    with mock.patch("twin.kernels._FEW_LEASES", -1):
        many, carry_v, revenue_v = compute_tick(state, start, end)
    assert np.array_equal(revenue, revenue_v)
    assert np.array_equal(carry, carry_v)
    assert np.array_equal(few.partial.lost_revenue_usd, many.partial.lost_revenue_usd)
    for scope, table in few.scopes.items():
        assert np.array_equal(table.columns, many.scopes[scope].columns, equal_nan=True), scope
