"""Hypothesis properties of the twin's fold and kernels (STYLE.md lesson 12).

A random log over a small mixed facility -- jobs with uneven work shares, steps, telemetry with
fatal XIDs, failures and repairs, leases by index and by count, PDU and meter readings, price
changes, out-of-order (late) timestamps and re-delivered duplicates -- is folded with
:func:`twin.fold_events`, and:

- the energy ledger closes, per tick and per scope row;
- MFU stays in [0, 1] and the six fractions sum to 1 for every scope row;
- the state (checksum) and every KPI are the same however the log is cut into batches;
- re-delivered duplicates change nothing;
- equal folds have equal checksums, different folds different ones.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit import twin_support as ts
from tests.unit.twin_support import T0, S
from twin import TwinState, close_tick, fold_events, kpi_rows, state_checksum
from twin.batches import EnergyPrice, JobCheckpoint, JobFailed, JobFinished, TelemetryBatch
from twin.estimator import split_samples
from twin.results import TickResult
from twin.state import Mode
from twin.telemetry import accept_seq

RACKS = {"r0": ([0, 1, 2, 3], "H100"), "r1": ([4, 5, 6, 7], "H200"), "r2": ([8, 9, 10], "GB200")}
N_GPU = 11
LEDGER = (
    "useful_j",
    "kernel_inefficiency_j",
    "straggler_wait_j",
    "comm_stall_j",
    "allocated_idle_j",
    "unallocated_j",
    "down_j",
)
FRACTIONS = ("compute", "straggler_wait", "comm_stall", "allocated_idle", "unallocated", "down")

Item = Any  # an event, or ("tm", source, seq, ts, gpus, power, sm, xid) for one message


@st.composite
def logs(draw: st.DrawFn) -> list[Item]:
    """A random log: topology first, then a shuffled mix of everything, with duplicates."""
    seqs: dict[str, int] = defaultdict(int)

    def nxt(source: str) -> int:
        seqs[source] += 1
        return seqs[source]

    def t() -> int:
        return T0 + draw(st.integers(0, 34)) * S + draw(st.sampled_from([0, S // 2]))

    items: list[Item] = [
        ts.rack(name, gpus, model, hall=f"h{k % 2}")
        for k, (name, (gpus, model)) in enumerate(RACKS.items())
    ]
    body: list[Item] = []
    n_jobs = draw(st.integers(0, 3))
    for j in range(n_jobs):
        gpus = sorted(draw(st.sets(st.integers(0, N_GPU - 1), min_size=1, max_size=6)))
        share = draw(
            st.one_of(
                st.none(),
                st.lists(st.sampled_from([1.0, 2.0, 2.5]), min_size=len(gpus), max_size=len(gpus)),
            )
        )
        body.append(ts.job(f"j{j}", gpus, ts=t(), share=share, attention=draw(st.booleans())))
        for n in range(draw(st.integers(0, 6))):
            dur = draw(st.sampled_from([0.5, 1.0, 2.0]))
            body.append(
                ts.step(
                    f"j{j}",
                    t(),
                    n=n + draw(st.integers(0, 1)),
                    tokens=draw(st.integers(1, 400_000)),
                    duration_s=dur,
                    exposed_s=dur * draw(st.sampled_from([0.0, 0.2, 0.5])),
                )
            )
        extra = draw(st.sampled_from(["none", "ckpt", "fail", "finish"]))
        if extra == "ckpt":
            body.append(
                JobCheckpoint(
                    ts_ns=t(),
                    source_id="sched",
                    seq=ts.seq(),
                    job_id=f"j{j}",
                    step=1,
                    duration_s=3.0,
                )
            )
        elif extra == "fail":
            body.append(
                JobFailed(
                    ts_ns=t(),
                    source_id="sched",
                    seq=ts.seq(),
                    job_id=f"j{j}",
                    reason="xid",
                    failed_gpu_indices=np.asarray(gpus[:1], np.int32),
                )
            )
        elif extra == "finish":
            body.append(
                JobFinished(ts_ns=t(), source_id="sched", seq=ts.seq(), job_id=f"j{j}", steps=3)
            )
    if draw(st.booleans()):
        body.append(ts.lease("L1", "acme", [0, 1, 2, 3, 4], 1e6, ts=t()))
    if draw(st.booleans()):
        body.append(
            ts.lease(
                "L2",
                "bigco",
                None,
                2e6,
                ts=t(),
                counts=(("GB200", 2),),
                start=T0 + 5 * S,
                end=T0 + 25 * S,
            )
        )
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.sampled_from(["failed", "repaired", "drained"]))
        body.append(ts.status(action, [draw(st.integers(0, N_GPU - 1))], ts=t()))
    for _ in range(draw(st.integers(0, 3))):
        body.append(ts.rack_power(t(), ["r0", "r2"], [3000.0, 5000.0], interval_s=2.0))
        body.append(ts.meter(t(), it_w=9000.0, total_w=10000.0, interval_s=2.0))
    if draw(st.booleans()):
        body.append(EnergyPrice(ts_ns=t(), source_id="iso", seq=ts.seq(), usd_per_mwh=80.0))
    for _ in range(draw(st.integers(1, 14))):
        name = draw(st.sampled_from(sorted(RACKS)))
        gpus = RACKS[name][0]
        k = len(gpus)
        power = draw(st.lists(st.floats(0, 1000, width=32), min_size=k, max_size=k))
        sm = draw(st.lists(st.floats(0, 1, width=32), min_size=k, max_size=k))
        xid = draw(st.lists(st.sampled_from([0, 0, 0, 13, 79]), min_size=k, max_size=k))
        body.append(("tm", name, 0, t(), gpus, power, sm, xid))
    body = draw(st.permutations(body))
    # sequence numbers per source in log order, then duplicates after their originals
    out: list[Item] = items
    for item in body:
        out.append((*item[:2], nxt(item[1]), *item[3:]) if isinstance(item, tuple) else item)
    for _ in range(draw(st.integers(0, 4))):
        if len(out) > len(RACKS):
            src = draw(st.integers(len(RACKS), len(out) - 1))
            at = draw(st.integers(src + 1, len(out)))
            out.insert(at, out[src])
    return out


def batches(log: list[Item], cuts: set[int]) -> list[Any]:
    """Cut ``log`` before every index in ``cuts``; inside a piece, runs of telemetry messages
    become one TelemetryBatch and runs of events one list."""
    out: list[Any] = []
    run: list[Item] = []

    def flush() -> None:
        if not run:
            return
        if isinstance(run[0], tuple):
            out.append(ts.telemetry([m[1:] for m in run]))
        else:
            out.append(list(run))
        run.clear()

    for k, item in enumerate(log):
        if k in cuts or (run and isinstance(item, tuple) != isinstance(run[0], tuple)):
            flush()
        run.append(item)
    flush()
    return out


def fold(log: list[Item], cuts: set[int]) -> tuple[TwinState, list[TickResult]]:
    state = TwinState()
    results = fold_events(state, batches(log, cuts))
    results.append(_close(state))
    return state, results


def _close(state: TwinState) -> TickResult:
    return close_tick(state)


def same_results(a: list[TickResult], b: list[TickResult]) -> bool:
    ra, rb = kpi_rows(a), kpi_rows(b)
    if ra.keys() != rb.keys():
        return False
    for key in ra:
        x, y = ra[key], rb[key]
        if x.dtype == object:
            if x.tolist() != y.tolist():
                return False
        elif not np.array_equal(x, y, equal_nan=True):
            return False
    return all(
        (p.ledger == q.ledger)
        and p.stragglers.gpu_index.tolist() == q.stragglers.gpu_index.tolist()
        and np.array_equal(p.stragglers.gpu_cost_gpu_s, q.stragglers.gpu_cost_gpu_s)
        for p, q in zip(a, b, strict=True)
    )


PROFILE = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROFILE
@given(log=logs(), cuts_a=st.sets(st.integers(0, 80)), cuts_b=st.sets(st.integers(0, 80)))
def test_fold_is_split_invariant(log: list[Item], cuts_a: set[int], cuts_b: set[int]) -> None:
    state_a, res_a = fold(log, cuts_a)
    state_b, res_b = fold(log, cuts_b)
    assert state_checksum(state_a) == state_checksum(state_b)
    assert same_results(res_a, res_b)


@PROFILE
@given(log=logs())
def test_ledger_closes_mfu_bounded_fractions_sum_to_one(log: list[Item]) -> None:
    _, results = fold(log, set())
    for tick in results:
        ledger = tick.ledger
        assert abs(ledger.residual_j) <= 1e-9 * max(1.0, ledger.facility_j)
        for table in tick.scopes.values():
            parts = sum(table.column(c) for c in LEDGER)
            np.testing.assert_allclose(parts, table.column("it_energy_j"), rtol=1e-9, atol=1e-6)
            mfu = table.column("mfu")
            assert np.all((mfu >= 0) & (mfu <= 1))
            has = table.column("gpus") > 0
            fr = np.stack([table.column(c) for c in FRACTIONS])[:, has]
            assert np.all(fr >= 0)
            np.testing.assert_allclose(fr.sum(axis=0), 1.0, atol=1e-12)


@PROFILE
@given(log=logs(), data=st.data())
def test_duplicates_change_nothing(log: list[Item], data: st.DataObject) -> None:
    base_state, base = fold(log, set())
    redelivered = list(log)
    for _ in range(data.draw(st.integers(1, 5))):
        src = data.draw(st.integers(0, len(redelivered) - 1))
        at = data.draw(st.integers(src + 1, len(redelivered)))
        redelivered.insert(at, redelivered[src])
    state, results = fold(redelivered, set())
    assert state_checksum(state) == state_checksum(base_state)
    assert same_results(results, base)
    assert state.total_counts[3] > base_state.total_counts[3]  # the duplicates were counted


@PROFILE
@given(log=logs())
def test_checksum_equal_for_equal_folds_and_differs_otherwise(log: list[Item]) -> None:
    a, _ = fold(log, set())
    b, _ = fold(log, set())
    assert state_checksum(a) == state_checksum(b)
    changed = [*log, ts.meter(T0 + 36 * S, it_w=1.0, total_w=2.0, interval_s=1.0)]
    c, _ = fold(changed, set())
    assert state_checksum(c) != state_checksum(a)


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), min_size=1, max_size=30),
    marks=st.lists(st.integers(-1, 4), min_size=4, max_size=4),
)
def test_vectorized_dedup_equals_one_by_one(pairs: list[tuple[int, int]], marks: list[int]) -> None:
    state = TwinState()
    state.ensure("src", 4)
    state.n["src"] = 4
    state.src_hwm[:4] = marks
    src = np.array([p[0] for p in pairs], np.int64)
    seq = np.array([p[1] for p in pairs], np.int64)
    got = accept_seq(state, src, seq)
    hwm = list(marks)
    want = []
    for s, q in pairs:
        want.append(q > hwm[s])
        hwm[s] = max(hwm[s], q)
    assert got.tolist() == want
    assert state.src_hwm[:4].tolist() == hwm


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from([Mode.STEP, Mode.ALLOC_IDLE, Mode.UNALLOC, Mode.DOWN]),
    sm=st.floats(0, 1, width=32),
    comm=st.floats(0, 1, width=32),
    floor=st.floats(0, 1, width=32),
    interval=st.integers(1, 60 * S),
    power=st.floats(0, 1800, width=32),
    util=st.one_of(st.none(), st.floats(0, 100, width=32)),
    phase=st.one_of(st.none(), st.floats(0, 1)),
)
def test_six_fractions_of_every_sample_sum_to_one(
    *,
    mode: int,
    sm: float,
    comm: float,
    floor: float,
    interval: int,
    power: float,
    util: float | None,
    phase: float | None,
) -> None:
    f32 = np.float32
    out = split_samples(
        np.array([mode], np.int8),
        sm_active=np.array([sm], f32),
        comm_frac=np.array([comm], f32),
        mfu_floor=np.array([floor], f32),
        interval_ns=np.array([float(interval)]),
        power_w=np.array([power], f32),
        comm_phase=None if phase is None else np.array([phase]),
        gpu_util_pct=None if util is None else np.array([util], f32),
    )
    tc, tm, ti = float(out.compute_ns[0]), float(out.comm_ns[0]), float(out.idle_ns[0])
    rest = interval - tc - tm - ti  # straggler (STEP) or the mode's own category
    assert min(tc, tm, ti, rest) >= 0
    assert tc + tm + ti + rest == interval  # the six fractions of the sample sum to 1
    assert min(out.compute_uj[0], out.comm_uj[0], out.idle_uj[0]) >= 0
    assert out.compute_uj[0] + out.comm_uj[0] + out.idle_uj[0] <= out.energy_uj[0]
    if mode == Mode.STEP and util is None and phase is None:
        assert tc >= min(floor, 1.0) * interval - 1  # compute never below the GPU's MFU
    if mode != Mode.STEP:
        assert tc == tm == ti == 0


def test_batches_helper_keeps_telemetry_runs_together() -> None:
    log: list[Item] = [
        ts.meter(T0, 1, 2, 1),
        ("tm", "r0", 1, T0, [0], [1.0], [0.5], [0]),
        ("tm", "r1", 1, T0, [4], [1.0], [0.5], [0]),
    ]
    out = batches(log, set())
    assert isinstance(out[1], TelemetryBatch)
    assert out[1].n_messages == 2
