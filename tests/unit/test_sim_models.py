"""The small models the simulator is built from: alpha-beta all-reduce, model FLOPs, placement,
failures, power and the telemetry encoder."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from sim.comm import exposed_comm_s, hierarchical_allreduce_s, link_goodput, ring_allreduce_s
from sim.config import ModelSpec
from sim.engine import Simulator
from sim.failures import FailureModel
from sim.jobs import flops_per_token
from sim.scenario import load_scenario, scenario_from_dict
from sim.topology import format_uuids
from tests.unit.sim_scenarios import leased_small


def test_ring_allreduce_alpha_beta() -> None:
    # t = 2(n-1) alpha + 2(n-1)/n S/B
    assert ring_allreduce_s(1, 1e9, 1e9, 1e-5) == 0.0
    assert ring_allreduce_s(4, 8e9, 1e9, 1e-5) == pytest.approx(6 * 1e-5 + 1.5 * 8.0)
    # the latency term grows with ranks, the bandwidth term saturates at 2 S / B
    assert ring_allreduce_s(10_000, 1e9, 1e9, 0) == pytest.approx(2.0, rel=1e-3)


def test_spanning_campuses_pays_the_slow_hop_once() -> None:
    one = hierarchical_allreduce_s(
        dp_ranks_per_campus={"c1": 64},
        shard_bytes=6e9,
        replica_bytes=8e11,
        nic_bytes_s=47.5e9,
        intra_alpha_s=5e-6,
        inter_bytes_s=4e10,
        inter_alpha_s=1.5e-4,
    )
    two = hierarchical_allreduce_s(
        dp_ranks_per_campus={"c1": 48, "c2": 16},
        shard_bytes=6e9,
        replica_bytes=8e11,
        nic_bytes_s=47.5e9,
        intra_alpha_s=5e-6,
        inter_bytes_s=4e10,
        inter_alpha_s=1.5e-4,
    )
    assert one.inter_s == 0.0
    assert two.inter_s == pytest.approx(2 * 1.5e-4 + 8e11 / 4e10)
    assert two.total_s > 50 * one.total_s


def test_exposed_comm_and_goodput() -> None:
    assert exposed_comm_s(10.0, 0.5, 3.0) == 7.0  # hiding is capped by the compute time
    assert exposed_comm_s(2.0, 0.5, 3.0) == 1.0
    assert link_goodput(0.006, 40.0, 0.05) == pytest.approx(0.76)
    assert link_goodput(0.5, 40.0, 0.05) == 0.05


def test_model_flops_per_token() -> None:
    m = ModelSpec(params=405e9, layers=126, heads=128, head_dim=128, seq_len=8192)
    assert flops_per_token(m) == 6 * 405e9 + 12 * 126 * 128 * 128 * 8192
    no_attn = ModelSpec(params=1e9, layers=1, heads=1, head_dim=1, seq_len=1, attention=False)
    assert flops_per_token(no_attn) == 6e9


def test_uuids_look_like_nvidias() -> None:
    raw = np.arange(32, dtype=np.uint8).reshape(2, 16)
    text = [bytes(u).decode() for u in format_uuids(raw)]
    assert text[0] == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert all(len(t) == 40 for t in text)


def test_failures_are_poisson_in_gpu_time() -> None:
    model = FailureModel.build(load_scenario("small").failures)
    rng = np.random.default_rng(1)
    up = np.ones(100_000, dtype=bool)
    counts = [model.draw(rng, up, 3600.0)[0].shape[0] for _ in range(200)]
    expected = 100_000 * model.rate_per_gpu_s * 3600.0
    assert np.mean(counts) == pytest.approx(expected, rel=0.15)
    gpus, xid, repair = model.draw(np.random.default_rng(2), up, 36_000.0)
    assert set(xid.tolist()) <= {int(k) for k in load_scenario("small").failures.xid_weights}
    assert (repair >= model.repair_min_s).all()
    assert (np.diff(gpus) > 0).all()


def test_spread_placement_takes_every_generation_in_proportion() -> None:
    sim = Simulator(load_scenario("small"), emit=False)
    sim.step()
    job = sim.jobs[0]
    counts = np.bincount(sim.topo.gpu_model[job.idx])
    total = np.bincount(sim.topo.gpu_model)
    share = counts[total > 0] / total[total > 0]
    assert np.allclose(share, share[0], atol=0.01)
    assert job.campuses == 2


def test_jobs_confined_to_their_lease() -> None:
    sim = Simulator(scenario_from_dict(leased_small()), emit=False)
    for _ in range(15):
        sim.step()
    for job in sim.jobs:
        if job.idx.shape[0]:
            owner = sim.lease_tenant[job.idx]
            assert (owner == sim.tenant_ids.index(job.tenant)).all(), job.job_id


def test_telemetry_fragments_decode() -> None:
    sim = Simulator(load_scenario("small"))
    records = sim.step()
    docs = [orjson.loads(v) for t, _, v in records if t == "facility.gpu"]
    assert len(docs) == sim.topo.n_racks
    d = docs[0]
    assert d["jobs"]
    assert set(d["job_slot"]) <= set(range(-1, len(d["jobs"])))
    assert all(0 <= x <= 1 for x in d["sm_active"])
    assert all(isinstance(x, int) for x in d["temp_c"] + d["sm_clock_mhz"] + d["nvlink_bytes"])
