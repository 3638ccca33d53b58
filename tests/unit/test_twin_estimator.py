"""The time-fraction estimator, hand-computed (twin.estimator)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit import twin_support as ts
from tests.unit.twin_support import T0, S
from twin import TwinState, close_tick, fold_events
from twin.estimator import comm_share, effective_mode, fatal_xid, split_samples
from twin.state import Mode

F32, F64 = np.float32, np.float64


def test_comm_share_follows_the_step_timeline() -> None:
    # steps of 2 s ending at 0: compute [0, 1.5), comm [1.5, 2), then again from 2
    got = comm_share(
        np.array([0.0, 1.0, 1.5, 0.5, -0.5, 3.5, 0.0]),  # interval starts minus the step's end
        np.array([1.0, 1.0, 0.5, 2.0, 1.0, 1.0, 4.0]),  # interval lengths
        np.full(7, 2.0),
        np.full(7, 0.5),
    )
    assert got.tolist() == pytest.approx([0.0, 0.5, 1.0, 0.25, 0.5, 0.5, 0.25])
    assert comm_share(np.array([3.0]), np.array([1.0]), np.array([0.0]), np.array([0.0])) == 0


def test_split_of_a_stepping_sample() -> None:
    step = np.array([Mode.STEP, Mode.STEP, Mode.STEP, Mode.UNALLOC], np.int8)
    out = split_samples(
        step,
        sm_active=np.array([0.9, 0.2, 0.5, 0.7], F32),
        comm_frac=np.array([0.25, 0.25, 0.25, 0.25], F32),
        mfu_floor=np.array([0.3, 0.3, 0.3, 0.3], F32),
        interval_ns=np.full(4, 1e9),
        power_w=np.array([500.0, 500.0, 500.0, 500.0], F32),
        gpu_util_pct=np.array([100, 100, 80, 100], F32),
    )
    # 1: compute capped at 1 - c; 2: floored at the GPU's MFU; 3: 20% with no kernel at all
    assert (out.compute_ns / 1e9).tolist() == pytest.approx([0.75, 0.3, 0.5, 0.0])
    assert (out.comm_ns / 1e9).tolist() == pytest.approx([0.25, 0.25, 0.25, 0.0])
    assert (out.idle_ns / 1e9).tolist() == pytest.approx([0.0, 0.0, 0.2, 0.0])
    assert out.energy_uj.tolist() == [5e8] * 4  # 500 W x 1 s
    assert (out.compute_uj / 1e6).tolist() == pytest.approx([375.0, 150.0, 250.0, 0.0])


def test_modes_stalls_checkpoints_and_fatal_xids() -> None:
    mode = effective_mode(
        np.array([Mode.STEP, Mode.STEP, Mode.STEP, Mode.UNALLOC, Mode.STEP], np.int8),
        ts_ns=np.array([5, 12, 7, 5, 5], np.int64),
        deadline_ns=np.full(5, 10, np.int64),
        ckpt_start_ns=np.full(5, 6, np.int64),
        ckpt_end_ns=np.full(5, 8, np.int64),
        xid=np.array([0, 0, 0, 0, 79], np.int32),
    )
    assert mode.tolist() == [Mode.STEP, Mode.ALLOC_IDLE, Mode.ALLOC_IDLE, Mode.UNALLOC, Mode.DOWN]
    assert fatal_xid(np.array([0, 13, 48, 79, 94, 999], np.int32)).tolist() == [
        False,
        False,
        True,
        True,
        True,
        False,
    ]


def test_samples_follow_the_phase_of_long_steps() -> None:
    # one step of 2 s (0.5 s exposed comm) ended at T0+1 s: the next one computes until
    # T0+2.5 s and communicates until T0+3 s; samples stand for [1, 2) and [2, 3)
    state = TwinState()
    fold_events(
        state,
        [
            [
                ts.rack("r0", [0, 1]),
                ts.job("j", [0, 1]),
                ts.step("j", T0 + S, n=1, tokens=1000, exposed_s=0.5),
            ],
            ts.telemetry(
                [
                    ("r0", 1, T0 + 2 * S, [0, 1], [300.0, 300.0], [0.95, 0.95], [0, 0]),
                    ("r0", 2, T0 + 3 * S, [0, 1], [300.0, 300.0], [0.5, 0.5], [0, 0]),
                ]
            ),
        ],
    )
    tick = close_tick(state)
    assert tick.kpi("job", "j", "comm_stall") == pytest.approx(0.25)
    assert tick.kpi("job", "j", "compute") == pytest.approx((0.95 + 0.5) / 2)
    assert tick.kpi("job", "j", "straggler_wait") == pytest.approx(0.025)
