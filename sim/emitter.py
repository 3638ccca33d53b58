"""Turns the simulator's state into the events of docs/EVENTS.md, interval by interval.

Telemetry is what a DCGM exporter would scrape: the true compute fraction becomes ``sm_active``
(plus small seeded noise), kernels resident (compute, collectives, barrier spins) become
``gpu_util_pct``, and so on. Meters report means over their own, longer intervals. Keys and
source ids follow :mod:`sim.records`: every source maps to one key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from sim.config import Scenario
from sim.cooling import FacilityPower
from sim.network import Link
from sim.records import EventWriter, Record
from sim.telemetry import RackBinaryEncoder, RackTelemetryEncoder
from sim.timefmt import NS_PER_S
from sim.topology import Topology
from twin.gpus import MODEL_NAMES

if TYPE_CHECKING:
    from sim.engine import LeaseWindow, Simulator
    from sim.jobs import Job

__all__ = ["FacilityEmitter", "IntervalState"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class IntervalState:
    """What the simulator computed for one interval, per GPU (seconds, W) and for the site."""

    t1: float
    activity: F64
    board: F64
    compute: F64
    strag: F64
    comm: F64
    allocated: B
    fp: FacilityPower


def _gen(scenario: Scenario, topo: Topology, attr: str) -> F64:
    table = np.zeros(len(MODEL_NAMES))
    for name, gen in scenario.generation.items():
        table[MODEL_NAMES.index(name)] = float(getattr(gen, attr))
    return table[topo.gpu_model]


class FacilityEmitter:
    """Encodes one simulator's events; holds the meters' running means."""

    def __init__(
        self, scenario: Scenario, topo: Topology, dt: float, rng: np.random.Generator
    ) -> None:
        self.sc = scenario
        self.topo = topo
        self.dt = dt
        self.dt_ns = round(dt * NS_PER_S)
        self.rng = rng
        self.writer = EventWriter()
        self.enc = RackTelemetryEncoder(topo, self.dt_ns)
        tel = scenario.telemetry
        self.binary: RackBinaryEncoder | None = (
            RackBinaryEncoder(topo, self.enc, tel.readings_per_message)
            if tel.format == "binary"
            else None
        )
        self.power_every = round(tel.power_interval_s / dt)
        self.cooling_every = round(tel.cooling_interval_s / dt)
        self.plant_every = round(tel.plant_interval_s / dt)
        self.noise = (tel.sm_active_noise, tel.activity_noise, tel.power_noise_w)
        self.tensor_ratio = _gen(scenario, topo, "tensor_active_ratio")
        self.dram_c = _gen(scenario, topo, "dram_active_compute")
        self.dram_m = _gen(scenario, topo, "dram_active_comm")
        self.max_clock = _gen(scenario, topo, "max_sm_clock_mhz")
        self.idle_clock = _gen(scenario, topo, "idle_sm_clock_mhz")
        self.nvlink_bps = _gen(scenario, topo, "nvlink_gbytes_s") * 1e9
        th = scenario.thermal
        self.mem_offset = th.memory_temp_offset_c
        self.mem_per_act = th.memory_temp_per_activity_c
        hall_of_rack = topo.rack_hall
        self.hall_racks = [np.flatnonzero(hall_of_rack == h) for h in range(len(topo.hall_ids))]
        self.hall_rack_ids = [[topo.rack_ids[r] for r in rs.tolist()] for rs in self.hall_racks]
        self.hall_cdu_ids = [[f"cdu/{rid}" for rid in ids] for ids in self.hall_rack_ids]
        nr = topo.n_racks
        self._rack_w = np.zeros(nr)
        self._hall_w = np.zeros(len(topo.hall_ids))
        self._it_w = 0.0
        self._total_w = 0.0
        self._flow = np.zeros(nr)
        self._ret = np.zeros(nr)
        self._pump = np.zeros(nr)
        self._chiller = 0.0
        self.telemetry_seq = 0
        self.gpu_samples = 0
        n = topo.n_gpus
        self._pool = rng.standard_normal(4 * n + 4096, dtype=np.float32)
        self._fc, self._fm, self._tmp = np.empty(n), np.empty(n), np.empty(n)
        self._b = np.empty(n, dtype=bool)

    # -- low-volume events ------------------------------------------------------------------

    def initial(self, ts: int, sim: Simulator) -> None:
        """At the epoch: every rack, every link, the price (then leases and jobs as scheduled)."""
        topo = self.topo
        offsets = topo.rack_offsets
        for r, rid in enumerate(topo.rack_ids):
            lo, hi = int(offsets[r]), int(offsets[r + 1])
            model = MODEL_NAMES[int(topo.rack_model[r])]
            self.writer.emit(
                "rack_installed",
                ts,
                rid,
                f"inventory/{rid}",
                {
                    "rack_id": rid,
                    "campus_id": topo.campus_ids[int(topo.hall_campus[topo.rack_hall[r]])],
                    "hall_id": topo.hall_ids[int(topo.rack_hall[r])],
                    "gpu_model": model,
                    "gpus_per_node": self.sc.generation[model].gpus_per_node,
                    "gpu_index": np.arange(lo, hi, dtype=np.int64),
                    "gpu_uuid": [bytes(u).decode("ascii") for u in topo.gpu_uuid[lo:hi]],
                },
            )
        self.link_state(ts, sim.network.links)
        self.energy_price(ts, sim.price)

    def link_state(self, ts: int, links: list[Link]) -> None:
        for lk in links:
            self.writer.emit("link_state", ts, lk.link_id, f"netmon/{lk.link_id}", lk.fields())

    def energy_price(self, ts: int, usd_per_mwh: float) -> None:
        self.writer.emit("energy_price", ts, "market", "market", {"usd_per_mwh": usd_per_mwh})

    def lease_signed(self, ts: int, w: LeaseWindow, gpus: I64, notice_days: float) -> None:
        self.writer.emit(
            "lease_signed",
            ts,
            w.lease_id,
            f"leases/{w.lease_id}",
            {
                "lease_id": w.lease_id,
                "tenant_id": w.tenant,
                "gpu_indices": gpus,
                "usd_per_month": w.usd_per_month,
                "start_ns": w.start_ns,
                "end_ns": w.end_ns,
                "notice_days": notice_days,
            },
        )

    def lease_notice(self, ts: int, lease_id: str, effective_end_ns: int) -> None:
        self.writer.emit(
            "lease_notice",
            ts,
            lease_id,
            f"leases/{lease_id}",
            {
                "lease_id": lease_id,
                "effective_end_ns": effective_end_ns,
            },
        )

    def lease_ended(self, ts: int, lease_id: str) -> None:
        self.writer.emit("lease_ended", ts, lease_id, f"leases/{lease_id}", {"lease_id": lease_id})

    def job_started(self, ts: int, job: Job) -> None:
        src = f"scheduler/{job.job_id}"
        self.writer.emit(
            "job_submitted",
            ts,
            job.job_id,
            src,
            {
                "job_id": job.job_id,
                "tenant_id": job.tenant,
                "gpus_requested": job.cfg.gpus,
            },
        )
        self.writer.emit("job_started", ts, job.job_id, src, job.started_fields())

    def gpu_status(
        self,
        ts: int,
        action: str,
        gpus: I64,
        *,
        xid: int | None,
        reason: str,
        xid_now: npt.NDArray[np.int32],
    ) -> None:
        topo = self.topo
        racks = topo.gpu_rack[gpus]
        for r in np.unique(racks).tolist():
            rid = topo.rack_ids[r]
            self.writer.emit(
                "gpu_status",
                ts,
                rid,
                f"inventory/{rid}",
                {
                    "action": action,
                    "gpu_indices": gpus[racks == r],
                    "xid": xid,
                    "reason": reason,
                },
            )
        self.enc.set_xid(xid_now)

    def jobs_changed(self, racks: I64, gpu_job: npt.NDArray[np.int32], job_ids: list[str]) -> None:
        self.enc.set_jobs(racks, gpu_job, job_ids)

    # -- per interval -----------------------------------------------------------------------

    def interval(self, sim: Simulator, st: IntervalState) -> list[Record]:
        w = self.writer
        events = [
            (ts, job.code, etype, job, fields)
            for job in sim.jobs
            for ts, etype, fields in job.events
        ]
        for job in sim.jobs:
            job.events.clear()
        events.sort(key=lambda e: (e[0], e[1]))
        for ts, _, etype, job, fields in events:
            w.emit(etype, sim.ns(ts), job.job_id, f"scheduler/{job.job_id}", fields)
        records = w.drain()
        ts1 = sim.ns(st.t1)
        self._telemetry(sim, st)
        if self.binary is None:
            records.extend(self.enc.encode(ts1, self.telemetry_seq))
        else:
            records.extend(self.binary.add(ts1, self.dt_ns, self.telemetry_seq))
        self.telemetry_seq += 1
        self.gpu_samples += self.topo.n_gpus
        self._meters(sim, ts1, st.fp)
        records.extend(w.drain())
        return records

    def finish(self) -> list[Record]:
        """End of the run: the readings a binary exporter still buffers (else nothing)."""
        return [] if self.binary is None else self.binary.flush()

    def _noise(self) -> tuple[npt.NDArray[np.float32], ...]:
        """Three standard-normal vectors for this interval: views at seeded random offsets
        into a pool drawn once (drawing 660,000 normals per interval would cost more than
        the rest of the telemetry)."""
        n = self.topo.n_gpus
        starts = self.rng.integers(0, self._pool.shape[0] - n, size=3).tolist()
        return tuple(self._pool[a : a + n] for a in starts)

    def _telemetry(self, sim: Simulator, st: IntervalState) -> None:
        """Fill the encoder's columns in place (no per-interval allocations of GPU arrays)."""
        cols = self.enc.columns
        inv = 1.0 / self.dt
        sm_sigma, act_sigma, power_sigma = self.noise
        fc, fm, tmp, b = self._fc, self._fm, self._tmp, self._b
        np.multiply(st.compute, inv, out=fc)
        np.multiply(st.comm, inv, out=fm)
        n1, n2, n3 = self._noise()
        any_down = not sim.up.all()
        down = np.logical_not(sim.up) if any_down else None
        clock = sim.thermal.clock
        sm = cols["sm_active"]
        np.multiply(n1, sm_sigma, out=sm)
        sm += fc
        tensor = cols["tensor_active"]
        np.multiply(fc, self.tensor_ratio, out=tensor)
        tensor *= clock
        np.multiply(n2, act_sigma, out=tmp)
        tensor += tmp
        dram = cols["dram_active"]
        np.multiply(fc, self.dram_c, out=dram)
        np.multiply(fm, self.dram_m, out=tmp)
        dram += tmp
        np.multiply(n3, act_sigma, out=tmp)
        dram += tmp
        for col in (sm, tensor, dram):
            np.clip(col, 0.0, 1.0, out=col)
            if down is not None:
                col[down] = 0.0
        util = cols["gpu_util_pct"]
        np.add(st.compute, st.comm, out=util)
        util += st.strag
        util *= 100.0 * inv
        sm_clock = cols["sm_clock_mhz"]
        np.multiply(self.max_clock, clock, out=sm_clock)
        np.logical_not(st.allocated, out=b)
        np.copyto(sm_clock, self.idle_clock, where=b)
        if down is not None:
            sm_clock[down] = 0.0
        np.copyto(cols["temp_c"], sim.thermal.temp_c)
        mem = cols["memory_temp_c"]
        np.multiply(st.activity, self.mem_per_act, out=mem)
        mem += sim.thermal.temp_c
        mem += self.mem_offset
        power = cols["power_w"]
        np.copyto(power, st.board)
        if power_sigma > 0:
            np.multiply(n1[::-1], power_sigma, out=tmp)
            power += tmp
            np.maximum(power, 0.0, out=power)
            if down is not None:
                power[down] = 0.0
        nvlink = cols["nvlink_bytes"]
        np.multiply(st.compute, 0.15, out=nvlink)
        np.multiply(st.comm, 0.5, out=tmp)
        nvlink += tmp
        nvlink *= self.nvlink_bps

    def _meters(self, sim: Simulator, ts: int, fp: FacilityPower) -> None:
        k = sim.k + 1
        self._rack_w += fp.rack_w
        self._hall_w += fp.hall_w
        self._it_w += fp.it_w
        self._total_w += fp.total_w
        self._flow += fp.cdu_flow_lpm
        self._ret += fp.cdu_return_c
        self._pump += fp.cdu_pump_w
        self._chiller += fp.chiller_w
        w = self.writer
        topo = self.topo
        if k % self.power_every == 0:
            m = 1.0 / self.power_every
            interval = self.power_every * self.dt_ns
            rack = np.round(self._rack_w * m, 1)
            for h, hid in enumerate(topo.hall_ids):
                w.emit(
                    "rack_power",
                    ts,
                    hid,
                    f"pdu/{hid}",
                    {
                        "hall_id": hid,
                        "interval_ns": interval,
                        "rack_id": self.hall_rack_ids[h],
                        "pdu_power_w": rack[self.hall_racks[h]],
                    },
                )
            w.emit(
                "hall_power",
                ts,
                "switchgear",
                "switchgear",
                {
                    "interval_ns": interval,
                    "hall_id": list(topo.hall_ids),
                    "switchgear_power_w": np.round(self._hall_w * m, 1),
                },
            )
            it = round(self._it_w * m, 1)
            w.emit(
                "facility_power",
                ts,
                "meter",
                "meter/facility",
                {
                    "interval_ns": interval,
                    "it_power_w": it,
                    "total_power_w": max(it, round(self._total_w * m, 1)),
                },
            )
            self._rack_w.fill(0.0)
            self._hall_w.fill(0.0)
            self._it_w = self._total_w = 0.0
        if k % self.cooling_every == 0:
            m = 1.0 / self.cooling_every
            interval = self.cooling_every * self.dt_ns
            supply = sim.thermal.supply_c[topo.rack_offsets[:-1]]
            for h, hid in enumerate(topo.hall_ids):
                rs = self.hall_racks[h]
                w.emit(
                    "cdu_readings",
                    ts,
                    hid,
                    f"cdu/{hid}",
                    {
                        "hall_id": hid,
                        "interval_ns": interval,
                        "cdu_id": self.hall_cdu_ids[h],
                        "rack_id": self.hall_rack_ids[h],
                        "supply_temp_c": np.round(supply[rs], 2),
                        "return_temp_c": np.round(np.minimum(self._ret[rs] * m, 90.0), 2),
                        "flow_lpm": np.round(self._flow[rs] * m, 1),
                        "pump_power_w": np.round(self._pump[rs] * m, 1),
                    },
                )
            self._flow.fill(0.0)
            self._ret.fill(0.0)
            self._pump.fill(0.0)
        if k % self.plant_every == 0:
            interval = self.plant_every * self.dt_ns
            w.emit(
                "plant_reading",
                ts,
                "plant",
                "plant",
                {
                    "interval_ns": interval,
                    "chiller_power_w": round(self._chiller / self.plant_every, 1),
                    "wet_bulb_c": round(fp.wet_bulb_c, 2),
                },
            )
            self._chiller = 0.0
            b = sim.battery
            w.emit(
                "battery_state",
                ts,
                b.battery_id,
                f"bms/{b.battery_id}",
                {
                    "battery_id": b.battery_id,
                    "state_of_charge": round(b.soc, 6),
                    "power_w": round(b.power_w, 1),
                    "capacity_wh": b.capacity_wh,
                },
            )
