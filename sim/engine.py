"""The simulator: one seeded, deterministic facility advancing in fixed sample intervals.

Each interval ``[t, t + dt)``: scheduled happenings at ``t`` (job starts and ends, repairs, lease
notices and ends, price changes), link episodes, GPU failures, then every job integrates its steps
over the interval (per-GPU seconds of compute, straggler wait, comm stall, allocated idle), board
power and temperatures follow, then rack, hall and facility power and cooling. The ground truth
takes the interval, and (when emitting) the events of the interval are encoded: job events at their
own times, telemetry and meters stamped at ``t + dt``.

All randomness comes from independent streams spawned from the scenario seed, one per concern
(topology, thermal, failures, telemetry noise, network, jobs), so switching emission off leaves the
physics and the ground truth bit-identical.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sim.comm import dp_ranks, hierarchical_allreduce_s
from sim.config import JobConfig, Scenario
from sim.cooling import Battery, FacilityPower, Plant, facility_power
from sim.emitter import FacilityEmitter, IntervalState
from sim.failures import FailureModel
from sim.jobs import Job, JobPhase
from sim.network import Network
from sim.placement import eligible_mask, lease_gpus, place_job
from sim.power import PowerModel, Thermal, full_load_rack_power_w
from sim.records import Record
from sim.timefmt import NS_PER_S, parse_duration_s, parse_instant_ns
from sim.topology import build_topology
from sim.truth import TruthAccumulator, TruthTable
from twin.gpus import GPU_MODELS, MODEL_NAMES

__all__ = ["IntervalError", "LeaseWindow", "Simulator"]

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class LeaseWindow:
    """A lease as the run saw it (revenue accrues from start to effective end)."""

    lease_id: str
    tenant: str
    usd_per_month: float
    gpus: int
    start_ns: int
    end_ns: int
    effective_end_ns: int
    ended: bool = False


def _model_table(scenario: Scenario, attr: str) -> F64:
    out = np.zeros(len(MODEL_NAMES))
    for name, gen in scenario.generation.items():
        out[MODEL_NAMES.index(name)] = float(getattr(gen, attr))
    return out


class IntervalError(ValueError):
    """The simulation interval does not divide a telemetry or truth period."""


def _multiple(period_s: float, dt: float, name: str) -> int:
    """How many intervals of ``dt`` make ``period_s``; :class:`IntervalError` unless whole."""
    k = round(period_s / dt)
    if k < 1 or abs(k * dt - period_s) > 1e-9 * period_s:
        raise IntervalError(
            f"telemetry.{name} ({period_s:g} s) is not a whole multiple of the simulation "
            f"interval ({dt:g} s)"
        )
    return k


class Simulator:
    """The facility. ``emit=False`` computes physics and truth only (no event encoding)."""

    def __init__(
        self, scenario: Scenario, *, emit: bool = True, interval_s: float | None = None
    ) -> None:
        self.scenario = sc = scenario
        streams = np.random.SeedSequence(sc.seed).spawn(6)
        rngs = [np.random.default_rng(s) for s in streams]
        self._rng_thermal, self._rng_fail, self._rng_noise, self._rng_net, self._rng_jobs = rngs[1:]
        self.topo = topo = build_topology(sc, rngs[0])
        self.dt = float(interval_s or sc.telemetry.gpu_interval_s)
        self.dt_ns = round(self.dt * NS_PER_S)
        self.epoch_ns = parse_instant_ns(sc.scenario.epoch)
        self.k = 0
        n = topo.n_gpus
        self.up = np.ones(n, dtype=bool)
        self.xid = np.zeros(n, dtype=np.int32)
        self.gpu_job = np.full(n, -1, dtype=np.int32)
        self.lease_tenant = np.full(n, -1, dtype=np.int32)
        self.gpu_tenant = np.full(n, -1, dtype=np.int32)
        self.power = PowerModel.build(sc, topo)
        self.rated_rack_w = full_load_rack_power_w(self.power, topo)
        self.plant = Plant.build(sc, self.rated_rack_w)
        self.battery = Battery.build(sc)
        idle_power = self.power.board_power_w(np.zeros(n), self.up)
        self.thermal = Thermal.build(sc, topo, self._rng_thermal, idle_power)
        self.failure_model = FailureModel.build(sc.failures)
        self.network = Network.build(sc.network, sc.link)
        self.price = sc.economics.energy_usd_per_mwh
        self._eff = _model_table(sc, "kernel_efficiency")
        self._tenant_ids: list[str] = []
        self.leases: list[LeaseWindow] = []
        self._sched: list[tuple[float, int, str, Any]] = []
        self._sched_n = 0
        self._starting: list[Job] = []
        self.jobs = self._make_jobs()
        self.truth = TruthAccumulator(
            topo, sc.telemetry.truth_tick_s, [j.job_id for j in self.jobs], self._tenant_ids
        )
        self._tick_every = _multiple(sc.telemetry.truth_tick_s, self.dt, "truth_tick_s")
        if emit:
            tel = sc.telemetry
            for key in ("power_interval_s", "cooling_interval_s", "plant_interval_s"):
                _multiple(getattr(tel, key), self.dt, key)
        self.out: FacilityEmitter | None = (
            FacilityEmitter(sc, topo, self.dt, self._rng_noise) if emit else None
        )
        n_buf = (np.zeros(n) for _ in range(5))
        self._compute, self._strag, self._comm, self._aidle, self._credit = n_buf
        self.last: FacilityPower | None = None
        self._signed = False

    # -- setup --------------------------------------------------------------------------------

    def _tenant(self, name: str) -> int:
        if name not in self._tenant_ids:
            self._tenant_ids.append(name)
        return self._tenant_ids.index(name)

    def _schedule(self, t: float, kind: str, payload: Any) -> None:
        heapq.heappush(self._sched, (t, self._sched_n, kind, payload))
        self._sched_n += 1

    def _make_jobs(self) -> list[Job]:
        sc = self.scenario
        taken = np.zeros(self.topo.n_gpus, dtype=bool)
        for le in sc.lease:
            gpus = lease_gpus(self.topo, le, taken)
            taken[gpus] = True
            code = self._tenant(le.tenant)
            self.lease_tenant[gpus] = code
            start_ns, end_ns = parse_instant_ns(le.start), parse_instant_ns(le.end)
            window = LeaseWindow(
                le.id, le.tenant, le.usd_per_month, int(gpus.shape[0]), start_ns, end_ns, end_ns
            )
            self.leases.append(window)
            self._schedule(-1.0, "lease_signed", (window, gpus, le.notice_days))
            if le.notice_after:
                self._schedule(
                    parse_duration_s(le.notice_after), "lease_notice", (window, le.notice_days)
                )
            self._schedule((end_ns - self.epoch_ns) / NS_PER_S, "lease_end", window)
        self.gpu_tenant[:] = self.lease_tenant
        jobs: list[Job] = []
        for cfg in sc.job:
            for k in range(cfg.count):
                job_id = cfg.id if cfg.count == 1 else f"{cfg.id}-{k + 1}"
                start = parse_duration_s(cfg.start_after)
                end = start + parse_duration_s(cfg.run_for) if cfg.run_for else math.inf
                self._tenant(cfg.tenant)
                job = Job(
                    code=len(jobs),
                    job_id=job_id,
                    tenant=cfg.tenant,
                    cfg=cfg,
                    start_s=start,
                    end_s=end,
                )
                jobs.append(job)
                self._schedule(start, "job_start", job)
        return jobs

    @property
    def tenant_ids(self) -> list[str]:
        return list(self._tenant_ids)

    @property
    def t(self) -> float:
        """Seconds of event time since the scenario epoch."""
        return self.k * self.dt

    def ns(self, t: float) -> int:
        return self.epoch_ns + round(t * NS_PER_S)

    # -- membership ------------------------------------------------------------------------------

    def _speed(self, cfg: JobConfig, idx: I64) -> F64:
        """Nominal FLOP/s of each GPU for this job: kernel efficiency x peak for its dtype (a
        model without FP8 tensor cores runs an FP8 job at its BF16 peak)."""
        dtype = cfg.model.dtype
        peaks = np.array(
            [
                spec.peak_flops(dtype if spec.fp8_tflops is not None else "bf16")
                for spec in (GPU_MODELS[m] for m in MODEL_NAMES)
            ]
        )
        codes = self.topo.gpu_model[idx]
        speed: F64 = self._eff[codes] * peaks[codes]
        return speed

    def _set_members(self, job: Job, idx: I64) -> None:
        """Move ``job`` onto ``idx`` (flushing truth first: membership changes inside a tick)."""
        self.truth.flush(self.gpu_job, self.gpu_tenant, self.price)
        old = job.idx
        self.gpu_job[old] = -1
        self.gpu_tenant[old] = self.lease_tenant[old]
        if idx.shape[0]:
            job.assign(idx, self._speed(job.cfg, idx))
            self.gpu_job[idx] = job.code
            self.gpu_tenant[idx] = self._tenant_ids.index(job.tenant)
            self._update_comm_shape(job)
        if self.out is not None:
            racks = np.unique(self.topo.gpu_rack[np.concatenate([old, idx])]).astype(np.int64)
            self.out.jobs_changed(racks, self.gpu_job, [j.job_id for j in self.jobs])

    def _update_comm_shape(self, job: Job) -> None:
        campus = self.topo.gpu_campus[job.idx]
        counts = np.bincount(campus, minlength=len(self.topo.campus_ids))
        job.campuses = int(np.count_nonzero(counts))
        mp = job.cfg.tensor * job.cfg.pipeline
        names = [self.topo.campus_ids[i] for i in np.flatnonzero(counts).tolist()]
        ranks = dp_ranks([int(counts[self.topo.campus_ids.index(c)]) for c in names], mp)
        job.shape = dict(zip(names, ranks, strict=True))

    def _update_comm(self) -> None:
        """Each job's all-reduce time for its next steps, given link states and sharing."""
        spanning = [j for j in self.jobs if j.campuses > 1 and j.communicating]
        net = self.network
        for job in self.jobs:
            if not job.active:
                continue
            shape = job.shape
            cfg = job.cfg
            params = cfg.model.params
            sharing = max(1, len(spanning))
            inter_bw, inter_alpha = net.inter_campus(set(shape), sharing)
            if len(shape) > 1 and inter_bw <= 0:
                inter_bw = net.nic_bytes_s  # campuses without a modelled link: use the NIC rate
            plan = hierarchical_allreduce_s(
                dp_ranks_per_campus=shape,
                shard_bytes=cfg.grad_bytes_per_param * params / (cfg.tensor * cfg.pipeline),
                replica_bytes=cfg.grad_bytes_per_param * params,
                nic_bytes_s=net.nic_bytes_s,
                intra_alpha_s=net.cfg.intra_alpha_us * 1e-6,
                inter_bytes_s=inter_bw,
                inter_alpha_s=inter_alpha,
            )
            job.comm_s = plan.total_s

    # -- scheduled happenings ------------------------------------------------------------------

    def _run_scheduled(self, t: float) -> None:
        for job in self.jobs:
            if job.phase == JobPhase.FINISHED and job.idx.shape[0]:
                self._set_members(job, np.zeros(0, np.int64))
        while self._sched and self._sched[0][0] <= t + 1e-9:
            _, _, kind, payload = heapq.heappop(self._sched)
            getattr(self, f"_on_{kind}")(t, payload)
        self._begin_started(t)

    def _on_lease_signed(self, t: float, payload: Any) -> None:
        window, gpus, notice_days = payload
        if self.out is not None:
            self.out.lease_signed(self.ns(t), window, gpus, notice_days)

    def _on_lease_notice(self, t: float, payload: Any) -> None:
        window, notice_days = payload
        effective = min(window.end_ns, self.ns(t) + notice_days * 86400 * NS_PER_S)
        window.effective_end_ns = effective
        self._schedule((effective - self.epoch_ns) / NS_PER_S, "lease_end", window)
        if self.out is not None:
            self.out.lease_notice(self.ns(t), window.lease_id, effective)

    def _on_lease_end(self, t: float, window: LeaseWindow) -> None:
        if window.ended:
            return  # an earlier effective end (a notice) already ended it
        window.ended = True
        code = self._tenant_ids.index(window.tenant)
        for job in self.jobs:
            if job.tenant == window.tenant and job.active:
                job.finish(t)
        self.truth.flush(self.gpu_job, self.gpu_tenant, self.price)
        mask = self.lease_tenant == code
        self.lease_tenant[mask] = -1
        self.gpu_tenant[mask & (self.gpu_job < 0)] = -1
        if self.out is not None:
            self.out.lease_ended(self.ns(t), window.lease_id)

    def _on_job_start(self, t: float, job: Job) -> None:
        tcode = self._tenant_ids.index(job.tenant)
        has_lease = bool(np.any(self.lease_tenant == tcode))
        free = (self.gpu_job < 0) & self.up
        mask = eligible_mask(
            self.topo,
            job.cfg,
            free,
            lease_tenant=self.lease_tenant,
            tenant_code=tcode,
            tenant_has_lease=has_lease,
        )
        idx = place_job(self.topo, job.cfg, job.job_id, mask)
        self._set_members(job, idx)
        job.phase = JobPhase.STEPPING  # begins once every job starting now is placed
        self._starting.append(job)
        if self.out is not None:
            self.out.job_started(self.ns(t), job)

    def _begin_started(self, t: float) -> None:
        """Jobs placed at ``t`` start stepping; at the epoch they are already in steady state
        (a random point in their step and checkpoint cycles)."""
        if not self._starting:
            return
        self._update_comm()
        steady = t <= 0.0
        for job in self._starting:
            phase = float(self._rng_jobs.random()) if steady else 0.0
            ckpt = float(self._rng_jobs.random()) if steady else 0.0
            job.begin(t, self.thermal.clock, phase, ckpt)
        self._starting.clear()

    def _on_repair(self, t: float, gpus: I64) -> None:
        self.truth.flush(self.gpu_job, self.gpu_tenant, self.price)
        self.up[gpus] = True
        self.xid[gpus] = 0
        if self.out is not None:
            self.out.gpu_status(
                self.ns(t), "repaired", gpus, xid=None, reason="repaired", xid_now=self.xid
            )

    def _on_price(self, t: float, usd_per_mwh: float) -> None:
        self.truth.flush(self.gpu_job, self.gpu_tenant, self.price)
        self.price = usd_per_mwh
        if self.out is not None:
            self.out.energy_price(self.ns(t), usd_per_mwh)

    # -- failures -----------------------------------------------------------------------------

    def _fail(self, t: float) -> None:
        gpus, xid, repair = self.failure_model.draw(self._rng_fail, self.up, self.dt)
        if gpus.shape[0] == 0:
            return
        self.truth.flush(self.gpu_job, self.gpu_tenant, self.price)
        self.up[gpus] = False
        self.xid[gpus] = xid
        for g, x, r in zip(gpus.tolist(), xid.tolist(), repair.tolist(), strict=True):
            self._schedule(t + r, "repair", np.array([g], dtype=np.int64))
            if self.out is not None:
                self.out.gpu_status(
                    self.ns(t),
                    "failed",
                    np.array([g], np.int64),
                    xid=x,
                    reason=f"XID {x}",
                    xid_now=self.xid,
                )
        hit = np.unique(self.gpu_job[gpus])
        for code in hit[hit >= 0].tolist():
            job = self.jobs[code]
            lost = gpus[self.gpu_job[gpus] == code]
            reason = f"XID {int(self.xid[lost[0]])} on GPU {int(lost[0])}"
            job.fail(t, lost, reason)
            keep = job.idx[~np.isin(job.idx, lost)]
            spares = self._spares(job, lost)
            self._set_members(job, np.sort(np.concatenate([keep, spares])))

    def _spares(self, job: Job, lost: I64) -> I64:
        """Healthy free GPUs of the same models (and campuses, tenant) to replace ``lost``."""
        tcode = self._tenant_ids.index(job.tenant)
        has_lease = bool(np.any(self.lease_tenant == tcode))
        free = (self.gpu_job < 0) & self.up
        base = eligible_mask(
            self.topo,
            job.cfg,
            free,
            lease_tenant=self.lease_tenant,
            tenant_code=tcode,
            tenant_has_lease=has_lease,
        )
        picks: list[I64] = []
        for g in lost.tolist():
            same = base & (self.topo.gpu_model == self.topo.gpu_model[g])
            same &= self.topo.gpu_campus == self.topo.gpu_campus[g]
            cand = np.flatnonzero(same)
            if cand.shape[0]:
                picks.append(cand[:1])
                base[cand[0]] = False
        return np.concatenate(picks).astype(np.int64) if picks else np.zeros(0, np.int64)

    # -- one interval ---------------------------------------------------------------------------

    def step(self) -> list[Record]:
        """Advance one sample interval; return its records (empty when not emitting)."""
        dt = self.dt
        t0 = self.t
        t1 = t0 + dt
        if self.k == 0:
            self._emit_initial()
        self._run_scheduled(t0)
        changed = self.network.step(self._rng_net, t0, dt)
        if changed and self.out is not None:
            self.out.link_state(self.ns(t0), changed)
        self._fail(t0)
        self._update_comm()
        compute, strag, comm, aidle, credit = (
            self._compute,
            self._strag,
            self._comm,
            self._aidle,
            self._credit,
        )
        for arr in (compute, strag, comm, aidle, credit):
            arr.fill(0.0)
        clock = self.thermal.clock
        for job in self.jobs:
            if job.phase == JobPhase.PENDING or job.idx.shape[0] == 0:
                continue
            job.advance(t0, t1, clock, credit)
            idx = job.idx
            compute[idx] = job.acc_compute
            strag[idx] = job.acc_strag
            comm[idx] = job.acc_comm
            aidle[idx] = job.acc_idle
        up = self.up
        allocated = self.gpu_job >= 0
        unalloc = np.where(up & ~allocated, dt, 0.0)
        down = np.where(up, 0.0, dt)
        activity = self.power.activity(compute, strag, comm, aidle, clock=clock, dt=dt)
        board = self.power.board_power_w(activity, up)
        board = np.round(board, 1)  # as reported: 0.1 W
        overhead = self.power.rack_overhead_w(activity, self.topo)
        rack_w = np.add.reduceat(board, self.topo.rack_offsets[:-1]) + overhead
        hour = ((self.epoch_ns // NS_PER_S + t0) / 3600.0) % 24.0
        fp = facility_power(self.plant, self.topo, rack_w, hour)
        self.last = fp
        self.battery.update(fp.total_w, dt)
        sizes = np.diff(self.topo.rack_offsets)
        it_e = (board + (overhead / sizes)[self.topo.gpu_rack]) * dt
        self.truth.add(
            dt,
            (compute, strag, comm, aidle, unalloc, down),
            credit,
            it_e,
            fp.total_w / fp.it_w if fp.it_w > 0 else 1.0,
        )
        self.thermal.update(board, dt, self.power)
        records: list[Record] = []
        if self.out is not None:
            records = self.out.interval(
                self, IntervalState(t1, activity, board, compute, strag, comm, allocated, fp)
            )
        else:
            for job in self.jobs:
                job.events.clear()
        self.k += 1
        if self.k % self._tick_every == 0:
            self.truth.end_tick(self.ns(self.t), self.gpu_job, self.gpu_tenant, self.price)
        return records

    def finish(self) -> list[Record]:
        """End of the run: records still buffered (telemetry readings a binary exporter holds
        until it has ``readings_per_message`` of them). Call once after the last step."""
        return [] if self.out is None else self.out.finish()

    def _emit_initial(self) -> None:
        for pc in self.scenario.price:
            self._schedule(parse_duration_s(pc.at), "price", pc.usd_per_mwh)
        if self.out is not None:
            self.out.initial(self.ns(0.0), self)

    # -- results ------------------------------------------------------------------------------

    def truth_table(self) -> TruthTable:
        return self.truth.table()

    def run(
        self, duration_s: float, on_interval: Callable[[list[Record]], None] | None = None
    ) -> None:
        """Advance ``duration_s`` (rounded up to whole intervals), handing records on."""
        n = math.ceil(duration_s / self.dt - 1e-9)
        for _ in range(n):
            records = self.step()
            if on_interval is not None:
                on_interval(records)
