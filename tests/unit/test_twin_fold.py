"""The reducers and the tick driver: dedup, late events, ticks, jobs, leases, the estimator."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit import twin_support as ts
from tests.unit.twin_support import T0, S
from twin import TwinState, apply, close_tick, fold_events, state_checksum
from twin.batches import JobCheckpoint, JobFailed, JobFinished, LeaseEnded, LeaseNotice
from twin.results import TickResult


def _msg(
    source: str,
    seq: int,
    t: int,
    gpus: list[int],
    *,
    sm: float = 0.5,
    power: float = 300.0,
    xid: int = 0,
) -> tuple:
    return (source, seq, t, gpus, [power] * len(gpus), [sm] * len(gpus), [xid] * len(gpus))


def _one_rack() -> TwinState:
    state = TwinState()
    apply(state, [ts.rack("r0", [0, 1, 2, 3])])
    return state


def test_first_event_opens_an_aligned_tick() -> None:
    state = TwinState(tick_ns=10 * S)
    apply(state, [ts.rack("r0", [0, 1], ts=T0 + 7 * S)])
    assert (state.tick_start_ns, state.tick_end_ns) == (T0, T0 + 10 * S)


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="tick_ns"):
        TwinState(tick_ns=0)
    with pytest.raises(ValueError, match="m_ref"):
        TwinState(m_ref=0.0)
    with pytest.raises(ValueError, match="no tick is open"):
        close_tick(TwinState())


def test_duplicate_telemetry_changes_nothing_but_the_counter() -> None:
    state = _one_rack()
    apply(state, ts.telemetry([_msg("r0", 1, T0 + S, [0, 1, 2, 3])]))
    before = state_checksum(state)
    acc = state.cell_acc.copy()
    apply(state, ts.telemetry([_msg("r0", 1, T0 + S, [0, 1, 2, 3], sm=0.9, power=999)]))
    assert np.array_equal(state.cell_acc, acc)
    assert state_checksum(state) == before
    assert state.tick_counts[3] == 1  # duplicates


def test_duplicates_inside_one_batch() -> None:
    state = _one_rack()
    batch = ts.telemetry(
        [
            _msg("r0", 2, T0 + S, [0]),
            _msg("r0", 1, T0 + S, [0]),
            _msg("r0", 2, T0 + S, [0]),
            _msg("r0", 3, T0 + 2 * S, [0]),
        ]
    )
    apply(state, batch)
    assert state.tick_counts[1] == 2  # messages accepted: seq 2 and seq 3
    assert state.tick_counts[3] == 2


def test_duplicate_event_is_dropped() -> None:
    state = _one_rack()
    ev = ts.meter(T0 + S, it_w=100.0, total_w=150.0, interval_s=1.0)
    apply(state, [ev, ev])
    assert state.meter_total_j == 150.0
    assert state.tick_counts[3] == 1


def test_late_events_fold_into_the_open_tick_and_are_counted() -> None:
    state = _one_rack()
    results = fold_events(state, [[ts.meter(T0 + 11 * S, 1.0, 2.0, 1.0)]])
    assert len(results) == 1
    assert state.tick_start_ns == T0 + 10 * S
    fold_events(state, [ts.telemetry([_msg("r0", 1, T0 + 3 * S, [0, 1])])])
    assert state.tick_counts[4] == 1  # late
    assert state.tick_counts[2] == 2  # its samples still count, in the open tick
    result = close_tick(state)
    assert result.start_ns == T0 + 10 * S
    assert result.counts["late"] == 1


def test_fold_events_splits_telemetry_batches_at_tick_ends_and_skips_gaps() -> None:
    state = _one_rack()
    batch = ts.telemetry(
        [
            _msg("r0", 1, T0 + 5 * S, [0]),
            _msg("r0", 2, T0 + 10 * S, [0]),  # stands for [T0+9 s, T0+10 s): still tick 1
            _msg("r0", 3, T0 + 15 * S, [0]),  # closes [T0, T0+10)
            _msg("r0", 4, T0 + 65 * S, [0]),  # closes [T0+10, T0+20) and jumps to [T0+60, T0+70)
        ]
    )
    results = fold_events(state, [batch])
    assert [(r.start_ns - T0) // S for r in results] == [0, 10]
    assert [r.counts["samples"] for r in results] == [2, 1]
    assert state.tick_start_ns == T0 + 60 * S


def test_close_tick_at_an_explicit_end() -> None:
    state = _one_rack()
    apply(state, ts.telemetry([_msg("r0", 1, T0 + S, [0, 1, 2, 3])]))
    result = close_tick(state, T0 + 5 * S)
    assert result.dt_s == 5.0
    assert result.kpi("facility", "facility", "gpus") == pytest.approx(4.0)
    assert (state.tick_start_ns, state.tick_end_ns) == (T0 + 5 * S, T0 + 15 * S)
    with pytest.raises(ValueError, match="not after"):
        close_tick(state, T0)


def test_unknown_gpus_and_racks_are_counted_not_dropped_silently() -> None:
    state = _one_rack()
    apply(state, ts.telemetry([_msg("r0", 1, T0 + S, [0, 7, 99])]))
    apply(state, [ts.rack_power(T0 + S, ["nope"], [10.0], 1.0)])
    apply(state, [ts.step("no-such-job", T0 + S, n=1, tokens=10)])
    assert state.tick_counts[5] == 4  # unknown: GPUs 7 and 99, rack "nope", the job
    assert state.tick_counts[2] == 1


def _tick_with(events: list, samples: list[tuple], start_events: list | None = None) -> TickResult:
    state = TwinState()
    log: list = [[ts.rack("r0", [0, 1, 2, 3]), *(start_events or [])]]
    for ev in events:
        log.append([ev] if not isinstance(ev, list) else ev)
    log.append(ts.telemetry(samples))
    fold_events(state, log)
    return close_tick(state)


def test_not_yet_stepped_job_is_allocated_idle() -> None:
    tick = _tick_with([ts.job("j", [0, 1])], [_msg("r0", 1, T0 + S, [0, 1, 2, 3], sm=0.9)])
    assert tick.kpi("job", "j", "allocated_idle") == 1.0
    assert tick.kpi("facility", "facility", "unallocated") == 0.5


def test_stalled_job_becomes_allocated_idle() -> None:
    # last step ended at T0+1 s and took 1 s: samples after T0+2.5 s are stalled
    events = [ts.job("j", [0, 1]), ts.step("j", T0 + S, n=1, tokens=1000, duration_s=1.0)]
    samples = [_msg("r0", 1, T0 + 2 * S, [0, 1], sm=0.9), _msg("r0", 2, T0 + 3 * S, [0, 1])]
    tick = _tick_with(events, samples)
    assert tick.kpi("job", "j", "allocated_idle") == pytest.approx(0.5)


def test_checkpoint_window_is_allocated_idle() -> None:
    events = [
        ts.job("j", [0, 1]),
        ts.step("j", T0 + 1 * S, n=1, tokens=1000, duration_s=4.0),
        JobCheckpoint(
            ts_ns=T0 + 4 * S, source_id="sched", seq=ts.seq(), job_id="j", step=1, duration_s=2.0
        ),
    ]
    samples = [
        _msg("r0", 1, T0 + 2 * S, [0, 1]),
        _msg("r0", 2, T0 + 3 * S, [0, 1]),
        _msg("r0", 3, T0 + 5 * S, [0, 1]),
    ]
    # the checkpoint ran [T0+2 s, T0+4 s): only the sample standing for [T0+2 s, T0+3 s) is in it
    tick = _tick_with(events, samples)
    assert tick.kpi("job", "j", "allocated_idle") == pytest.approx(1 / 3)


def test_failed_job_marks_gpus_down_and_restarts_stepping() -> None:
    events = [
        ts.job("j", [0, 1]),
        ts.step("j", T0 + S, n=1, tokens=1000, duration_s=1.0),
        JobFailed(
            ts_ns=T0 + S,
            source_id="sched",
            seq=ts.seq(),
            job_id="j",
            reason="xid",
            failed_gpu_indices=np.array([1], np.int32),
        ),
    ]
    tick = _tick_with(events, [_msg("r0", 1, T0 + int(1.5 * S), [0, 1])])
    # GPU 1 is down from T0+1 s (9 of its 10 GPU-seconds); GPU 0 waits for the restart
    assert tick.kpi("job", "j", "down") == pytest.approx(0.45)
    assert tick.kpi("job", "j", "allocated_idle") == pytest.approx(0.55)
    state = TwinState()
    fold_events(state, [[ts.rack("r0", [0, 1, 2, 3]), *events, ts.job("j", [0, 2])]])
    assert state.job_phase[0] == 2  # a re-start of a job that stepped resumes stepping


def test_redone_steps_are_not_credited() -> None:
    events = [
        ts.job("j", [0, 1]),
        ts.step("j", T0 + S, n=5, tokens=1000),
        ts.step("j", T0 + 2 * S, n=4, tokens=1000),
        ts.step("j", T0 + 3 * S, n=6, tokens=1),
    ]
    tick = _tick_with(events, [_msg("r0", 1, T0 + S, [0])])
    assert tick.kpi("job", "j", "flops") == pytest.approx(1001 * 6e9)


def test_fatal_xid_sample_is_down() -> None:
    tick = _tick_with(
        [], [_msg("r0", 1, T0 + S, [0, 1], xid=79), _msg("r0", 2, T0 + 2 * S, [2, 3], xid=13)]
    )
    assert tick.kpi("facility", "facility", "down") == 0.5


def test_finished_job_releases_its_gpus() -> None:
    state = TwinState()
    fold_events(
        state,
        [
            [
                ts.rack("r0", [0, 1]),
                ts.job("j", [0, 1]),
                JobFinished(ts_ns=T0 + 5 * S, source_id="sched", seq=ts.seq(), job_id="j", steps=0),
            ]
        ],
    )
    tick = close_tick(state)
    assert tick.kpi("job", "j", "gpus") == pytest.approx(1.0)  # half the tick, two GPUs
    assert (state.gpu_job[:2] == -1).all()
    assert "j" not in close_tick(state).scope("job").ids


def test_uneven_work_shares_split_the_credit() -> None:
    state = TwinState()
    fold_events(
        state,
        [
            [
                ts.rack("r0", [0, 1, 2]),
                ts.job("j", [0, 1, 2], share=[2.0, 1.0, 1.0]),
                ts.step("j", T0 + S, n=1, tokens=1000),
            ]
        ],
    )
    tick = close_tick(state)
    flops = 1000 * 6e9
    assert tick.kpi("job", "j", "flops") == pytest.approx(flops)
    # GPU 0 got half the work: rack r0's three GPUs are two cells (share 2 and share 1)
    shares = sorted(state.cell_share[: state.n["cell"]].tolist())
    assert shares == [1.0, 2.0]
    state2 = TwinState()
    fold_events(
        state2,
        [
            [
                ts.rack("r0", [0, 1, 2]),
                ts.job("j", [0, 1, 2], share=[2.0, 1.0, 1.0]),
                ts.step("j", T0 + S, n=1, tokens=1000),
            ]
        ],
    )
    by_share = {
        float(state2.cell_share[c]): float(state2.cell_flops[c])
        for c in range(state2.n["cell"])
        if state2.cell_n[c] > 0
    }
    assert by_share == {2.0: pytest.approx(flops / 2), 1.0: pytest.approx(flops / 2)}


def test_credit_above_peak_carries_into_the_next_tick() -> None:
    state = TwinState()
    peak_tick = 989.4e12 * 10
    tokens = int(1.5 * peak_tick / 6e9)  # 1.5 ticks of peak FLOPs on one GPU
    fold_events(
        state, [[ts.rack("r0", [0]), ts.job("j", [0]), ts.step("j", T0 + S, n=1, tokens=tokens)]]
    )
    first = close_tick(state)
    second = close_tick(state)
    assert first.kpi("job", "j", "mfu") == 1.0
    assert second.kpi("job", "j", "mfu") == pytest.approx(tokens * 6e9 / peak_tick - 1.0)


def test_lease_by_counts_waits_for_racks() -> None:
    state = TwinState()
    fold_events(
        state,
        [[ts.rack("r0", [0, 1], "H100"), ts.lease("L", "acme", None, 1e6, counts=(("H100", 3),))]],
    )
    assert state.lease_n_gpus[0] == 2
    assert state.lease_pending == {0: [(1, 1)]}
    fold_events(state, [[ts.rack("r1", [2, 3], "H100")]])
    assert state.lease_n_gpus[0] == 3
    assert state.lease_pending == {}
    assert state.gpu_lease[:4].tolist() == [0, 0, 0, -1]


def test_lease_notice_and_end_stop_revenue() -> None:
    state = TwinState()
    fold_events(state, [[ts.rack("r0", [0, 1]), ts.lease("L", "acme", [0, 1], 7.3e6)]])
    apply(
        state,
        [
            LeaseNotice(
                ts_ns=T0,
                source_id="leases",
                seq=ts.seq(),
                lease_id="L",
                effective_end_ns=T0 + 4 * S,
            )
        ],
    )
    tick = close_tick(state)
    assert tick.kpi("tenant", "acme", "revenue_usd") == pytest.approx(7.3e6 / 730 / 3600 * 4)
    assert state.lease_n_gpus[0] == 0  # expired at close: GPUs released
    apply(state, [LeaseEnded(ts_ns=T0 + 12 * S, source_id="leases", seq=ts.seq(), lease_id="L")])
    assert close_tick(state).kpi("tenant", "acme", "revenue_usd") == 0.0


def test_lease_without_gpus_still_earns_for_its_tenant() -> None:
    state = TwinState()
    fold_events(state, [[ts.rack("r0", [0, 1]), ts.lease("L", "acme", [], 7.3e6)]])
    tick = close_tick(state)
    assert tick.kpi("tenant", "acme", "revenue_usd") == pytest.approx(7.3e6 / 730 / 3600 * 10)
    assert tick.kpi("facility", "facility", "revenue_usd") == pytest.approx(7.3e6 / 730 / 3600 * 10)


def test_repaired_gpu_comes_back() -> None:
    events = [ts.status("failed", [0]), ts.status("repaired", [0], ts=T0 + 5 * S)]
    tick = _tick_with(events, [_msg("r0", 1, T0 + 6 * S, [0, 1, 2, 3])])
    assert tick.kpi("facility", "facility", "down") == 0.0
    assert tick.kpi("facility", "facility", "unallocated") == 1.0


def test_unobserved_cells_fall_back_to_their_status() -> None:
    state = TwinState()
    fold_events(state, [[ts.rack("r0", [0, 1, 2, 3]), ts.status("drained", [3]), ts.job("j", [0])]])
    tick = close_tick(state)  # no telemetry at all
    f = tick.scope("facility").row("facility")
    assert (f["allocated_idle"], f["unallocated"], f["down"]) == (0.25, 0.5, 0.25)


def test_copy_is_independent() -> None:
    state = _one_rack()
    twin = state.copy()
    apply(twin, ts.telemetry([_msg("r0", 1, T0 + S, [0])]))
    assert state_checksum(twin) != state_checksum(state)
