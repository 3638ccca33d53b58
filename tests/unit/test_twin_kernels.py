"""Hand-computed cases for every kernel, on a six-GPU facility with one tick.

Rack r0: four H100 (GPUs 0-3) in hall h0; rack r1: two GB200 (GPUs 4, 5) in hall h1; one campus.
Job j on GPUs 0 and 1 (equal work, 6N FLOPs per token, N = 1e9); lease L1 (tenant acme) holds
GPUs 0-3. GPU 4 has failed. Two telemetry samples of 1 s each; GPU 5's second sample carries
XID 79 (fallen off the bus). Two steps of the job (2 s, no exposed communication) credit 2F
model FLOPs, F = 197,880 tokens x 6e9 FLOPs = 1.18728e15, so each step's per-GPU MFU is
F/2 / (989.4e12 x 2 s) = 0.30. The estimator itself is tested in test_twin_estimator.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit import twin_support as ts
from tests.unit.twin_support import T0, S
from twin import TwinState, fold_events
from twin.batches import EnergyPrice
from twin.results import TickResult

F = 197_880 * 6e9
H100 = 989.4e12
GB200 = 2500e12
USD_PER_MONTH = 7.3e6  # -> $10 000 per hour, 2.777... per second


def _facility_events() -> list[object]:
    return [
        ts.rack("r0", [0, 1, 2, 3], "H100", hall="h0"),
        ts.rack("r1", [4, 5], "GB200", hall="h1"),
        ts.job("j", [0, 1]),
        ts.lease("L1", "acme", [0, 1, 2, 3], USD_PER_MONTH),
        ts.status("failed", [4]),
        ts.step("j", T0 + 1 * S, n=1, tokens=197_880, exposed_s=0.0),
    ]


def _samples(t: int, seq: int, xid5: int) -> list[tuple]:
    return [
        ("r0", seq, t, [0, 1, 2, 3], [600, 400, 100, 100], [0.9, 0.5, 0.0, 0.0], [0, 0, 0, 0]),
        ("r1", seq, t, [4, 5], [50, 120], [0.0, 0.0], [0, xid5]),
    ]


def _run(price_event: bool = False) -> tuple[TickResult, TwinState]:
    state = TwinState()
    log: list = [_facility_events()]
    log.append(ts.telemetry(_samples(T0 + 2 * S, 1, 0)))
    log.append(ts.telemetry(_samples(T0 + 3 * S, 2, 79)))
    log.append(
        [
            ts.step("j", T0 + int(3.5 * S), n=2, tokens=197_880, exposed_s=0.0),
            ts.rack_power(T0 + 3 * S, ["r0"], [1600.0], interval_s=2.0),
            ts.meter(T0 + 3 * S, it_w=1800.0, total_w=2000.0, interval_s=2.0),
        ]
    )
    if price_event:
        log.append([EnergyPrice(ts_ns=T0 + 4 * S, source_id="iso", seq=1, usd_per_mwh=100.0)])
    log.append([ts.meter(T0 + 12 * S, it_w=0.0, total_w=0.0, interval_s=1.0)])  # closes tick 1
    results = fold_events(state, log)
    assert len(results) == 1
    return results[0], state


@pytest.fixture(scope="module")
def tick() -> TickResult:
    return _run()[0]


def test_tick_bounds(tick: TickResult) -> None:
    assert (tick.start_ns, tick.end_ns, tick.dt_s) == (T0, T0 + 10 * S, 10.0)


def test_time_fractions_gpu_weighted(tick: TickResult) -> None:
    f = tick.scope("facility").row("facility")
    # GPU 0: compute .9 straggler .1; GPU 1: compute .5 straggler .5;
    # GPUs 2, 3: unallocated; GPU 4: down; GPU 5: half unallocated, half down (XID 79)
    assert f["gpus"] == pytest.approx(6.0)
    assert f["compute"] == pytest.approx(1.4 / 6)
    assert f["straggler_wait"] == pytest.approx(0.6 / 6)
    assert f["comm_stall"] == pytest.approx(0.0)
    assert f["allocated_idle"] == pytest.approx(0.0)
    assert f["unallocated"] == pytest.approx(2.5 / 6)
    assert f["down"] == pytest.approx(1.5 / 6)
    job = tick.scope("job").row("j")
    assert (job["gpus"], job["compute"], job["comm_stall"], job["straggler_wait"]) == (
        pytest.approx(2.0),
        pytest.approx(0.7),
        pytest.approx(0.0),
        pytest.approx(0.3),
    )


def test_mfu_per_scope(tick: TickResult) -> None:
    assert tick.kpi("job", "j", "mfu") == pytest.approx(2 * F / (2 * H100 * 10))
    facility_peak = (4 * H100 + 2 * GB200) * 10
    assert tick.kpi("facility", "facility", "mfu") == pytest.approx(2 * F / facility_peak)
    assert tick.kpi("rack", "r1", "mfu") == 0.0
    assert tick.kpi("generation", "H100", "mfu") == pytest.approx(2 * F / (4 * H100 * 10))
    assert tick.kpi("facility", "facility", "flops") == pytest.approx(2 * F)


def test_energy_and_rack_share(tick: TickResult) -> None:
    # board: r0 = 1200 + 800 + 200 + 200, r1 = 100 + 240; r0's PDU 3200 J -> 800 J non-GPU
    assert tick.kpi("rack", "r0", "gpu_energy_j") == pytest.approx(2400.0)
    assert tick.kpi("rack", "r0", "it_energy_j") == pytest.approx(3200.0)
    assert tick.kpi("rack", "r1", "it_energy_j") == pytest.approx(340.0)
    assert tick.kpi("hall", "h1", "it_energy_j") == pytest.approx(340.0)
    assert tick.kpi("campus", "c0", "it_energy_j") == pytest.approx(3540.0)
    assert tick.kpi("job", "j", "it_energy_j") == pytest.approx(2000.0 + 400.0)
    assert tick.kpi("facility", "facility", "power_w") == pytest.approx(3940.0 / 10)


def test_ledger_by_hand(tick: TickResult) -> None:
    ledger = tick.ledger
    mfu_job = 2 * F / (2 * H100 * 10)  # 0.12
    useful = 2400.0 * mfu_job
    assert ledger.useful_j == pytest.approx(useful)
    # board: GPU 0 1200 J (1080 compute, 120 straggler), GPU 1 800 J (400, 400); the job's
    # share of r0's non-GPU energy (400 J) splits like its time: 280 compute, 120 straggler
    assert ledger.kernel_inefficiency_j == pytest.approx(1080 + 400 + 280 - useful)
    assert ledger.straggler_wait_j == pytest.approx(120 + 400 + 120)
    assert ledger.comm_stall_j == pytest.approx(0.0)
    assert ledger.allocated_idle_j == pytest.approx(0.0)
    assert ledger.unallocated_j == pytest.approx(200 + 200 + 400 + 120)
    assert ledger.down_j == pytest.approx(100 + 120)
    assert ledger.overhead_j == pytest.approx(400.0)
    assert ledger.it_j == pytest.approx(3540.0)
    assert ledger.facility_j == pytest.approx(3940.0)
    assert abs(ledger.residual_j) < 1e-9


def test_recoverable_energy(tick: TickResult) -> None:
    mfu = tick.kpi("facility", "facility", "mfu")
    assert tick.kpi("facility", "facility", "recoverable_j") == pytest.approx(
        3540.0 * (1 - mfu / 0.40)
    )
    assert tick.kpi("rack", "r1", "recoverable_j") == pytest.approx(340.0)


def test_energy_cost_default_price_and_price_event(tick: TickResult) -> None:
    assert tick.usd_per_mwh == 62.0
    assert tick.kpi("facility", "facility", "energy_usd") == pytest.approx(3940 / 3.6e9 * 62)
    priced, _ = _run(price_event=True)
    assert priced.usd_per_mwh == 100.0
    assert priced.kpi("facility", "facility", "energy_usd") == pytest.approx(3940 / 3.6e9 * 100)


def test_lease_revenue_and_dollars_per_pflop_hour(tick: TickResult) -> None:
    revenue = USD_PER_MONTH / (730 * 3600) * 10
    assert tick.kpi("tenant", "acme", "revenue_usd") == pytest.approx(revenue)
    assert tick.kpi("tenant", "unleased", "revenue_usd") == 0.0
    assert tick.kpi("facility", "facility", "revenue_usd") == pytest.approx(revenue)
    pflop_h = 2 * F / 1e15 / 3600
    assert tick.kpi("tenant", "acme", "useful_pflop_h") == pytest.approx(pflop_h)
    assert tick.kpi("tenant", "acme", "usd_per_useful_pflop_h") == pytest.approx(revenue / pflop_h)
    assert np.isnan(tick.kpi("tenant", "unleased", "usd_per_useful_pflop_h"))
    # tenants' overhead share is pro rata IT energy, so their energy sums to the facility's
    energy = tick.scope("tenant").column("energy_j").sum()
    assert energy == pytest.approx(3940.0)


def test_straggler_attribution(tick: TickResult) -> None:
    # step 2 (2 s): GPU 0 computed 90% of the step, GPU 1 50%: GPU 1 waited 0.4 x 2 s for GPU 0
    s = tick.stragglers
    assert s.gpu_index.tolist() == [0]
    assert s.gpu_cost_gpu_s.tolist() == pytest.approx([0.8])
    assert s.rack_ids == ("r0",)
    assert s.rack_cost_gpu_s.tolist() == pytest.approx([0.8])
    assert s.generation_ids == ("H100",)
    assert s.generation_cost_gpu_s.tolist() == pytest.approx([0.8])
    assert tick.kpi("job", "j", "straggler_cost_gpu_s") == pytest.approx(0.8)


def test_counts(tick: TickResult) -> None:
    assert tick.counts["samples"] == 12
    assert tick.counts["messages"] == 4
    assert tick.counts["duplicates"] == 0


def test_cumulative_money_rolls_forward() -> None:
    tick, state = _run()
    acme = state.tenant_index["acme"]
    assert state.tenant_revenue_usd[acme] == pytest.approx(
        tick.kpi("tenant", "acme", "revenue_usd")
    )
    assert state.lease_revenue_usd[0] == pytest.approx(tick.kpi("tenant", "acme", "revenue_usd"))
