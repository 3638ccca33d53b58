"""Every named query in queries/ on the DuckDB file two real runs through the broker wrote.

The expected values come from other paths through the same data (raw tables, other scopes, the
lease terms of the scenario, the `twin run` summary), so a wrong query fails.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pytest

from streams.queries import list_queries
from tests.integration.analyst.support import AnalystRuns, rows, scalar

pytestmark = pytest.mark.integration

RUNS = ("small", "small-leased")
CAUSES = {
    "useful",
    "kernel_inefficiency",
    "straggler_wait",
    "comm_stall",
    "allocated_idle",
    "unallocated",
    "down",
    "overhead",
}


def close(a: Any, b: Any, rel: float = 1e-9, abs_: float = 1e-12) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def test_every_named_query_runs_on_both_runs(con: duckdb.DuckDBPyConnection) -> None:
    for run in RUNS:
        for q in list_queries():
            got = rows(con, q.name, run_id=run)
            if q.name not in ("top_straggler_racks",):  # the mixed run has none (see below)
                assert got, f"{q.name} returned no rows for run {run}"


@pytest.mark.parametrize("run", RUNS)
def test_facility_summary_matches_the_raw_kpi_rows_and_the_run_summary(
    con: duckdb.DuckDBPyConnection, analyst_runs: AnalystRuns, run: str
) -> None:
    (f,) = rows(con, "facility_summary", run_id=run)
    assert f["gpus"] == 3360
    assert f["ticks"] >= 12
    assert 0.0 < f["mfu"] < 1.0
    energy_j = scalar(
        con, "SELECT sum(energy_j) FROM kpi WHERE run_id = ? AND scope = 'facility'", run
    )
    assert close(f["energy_mwh"], energy_j / 3.6e9)
    assert f == analyst_runs.summaries[run]["facility"][0]  # the summary runs the same SQL


@pytest.mark.parametrize("run", RUNS)
def test_waste_ledger_by_cause_sums_to_the_facility_energy(
    con: duckdb.DuckDBPyConnection, run: str
) -> None:
    (f,) = rows(con, "facility_summary", run_id=run)
    ledger = rows(con, "waste_ledger", run_id=run)
    assert {r["cause"] for r in ledger} == CAUSES
    assert close(sum(r["mwh"] for r in ledger), f["energy_mwh"], rel=1e-9)
    assert close(sum(r["usd"] for r in ledger), f["energy_usd"], rel=1e-9)
    assert close(sum(r["share"] for r in ledger), 1.0)
    assert [r["mwh"] for r in ledger] == sorted((r["mwh"] for r in ledger), reverse=True)
    for r in ledger:  # per day of event time: the run covered f["seconds"]
        assert close(r["mwh_per_day"], r["mwh"] * 86400 / f["seconds"], rel=1e-9)
        assert close(r["usd_per_day"], r["usd"] * 86400 / f["seconds"], rel=1e-9)


def test_waste_ledger_over_time_per_day_and_per_tick(con: duckdb.DuckDBPyConnection) -> None:
    run = "small-leased"
    total = {r["cause"]: r for r in rows(con, "waste_ledger", run_id=run)}
    per_day = rows(con, "waste_ledger_over_time", run_id=run)  # default: one UTC day
    assert len({r["event_time"] for r in per_day}) == 1  # a 2-minute run inside one day
    for r in per_day:
        assert close(r["mwh"], total[r["cause"]]["mwh"])
        assert close(r["usd_per_day"], total[r["cause"]]["usd_per_day"])
    per_tick = rows(con, "waste_ledger_over_time", run_id=run, bucket_s=0)
    ticks = scalar(con, "SELECT count(*) FROM kpi WHERE run_id = ? AND scope = 'facility'", run)
    assert len(per_tick) == ticks * len(CAUSES)
    facility = dict(
        con.execute(
            "SELECT tick_start_ns // 1000, energy_j FROM kpi WHERE run_id = ? AND scope = "
            "'facility'",
            [run],
        ).fetchall()
    )
    sums: dict[int, float] = {}
    for r in per_tick:  # event_time: the tick's start, naive UTC
        start_us = (r["event_time"] - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        sums[start_us] = sums.get(start_us, 0.0) + r["mwh"] * 3.6e9
    assert set(sums) == set(facility)
    for start, energy in facility.items():
        assert close(sums[start], energy, rel=1e-9)


@pytest.mark.parametrize("run", RUNS)
def test_mfu_over_time_per_tick_and_bucketed(con: duckdb.DuckDBPyConnection, run: str) -> None:
    per_tick = rows(con, "mfu_over_time", run_id=run)
    assert {r["scope"] for r in per_tick} == {"facility", "campus", "hall", "generation"}
    assert all(0.0 <= r["mfu"] <= 1.0 for r in per_tick if r["mfu"] is not None)
    times = [r["t_s"] for r in per_tick]
    assert times == sorted(times)
    assert times[0] == 0.0
    # per tick: 1 facility + 2 campuses + 3 halls + 3 generations
    ticks = scalar(con, "SELECT count(*) FROM kpi WHERE run_id = ? AND scope = 'facility'", run)
    assert len(per_tick) == 9 * ticks
    # one bucket spanning the run: the run's MFU per scope, as the whole-run queries give it
    whole = rows(con, "mfu_over_time", run_id=run, bucket_s=10**7)
    by_key = {(r["scope"], r["scope_id"]): r for r in whole}
    assert len(whole) == 9
    assert all(r["ticks"] == ticks for r in whole)
    (f,) = rows(con, "facility_summary", run_id=run)
    assert close(by_key[("facility", "facility")]["mfu"], f["mfu"])
    for g in rows(con, "mfu_by_generation", run_id=run):
        assert close(by_key[("generation", g["generation"])]["mfu"], g["mfu"])
    # 60-second buckets: credited FLOPs over peak FLOPs of the ticks in each bucket
    bucketed = rows(con, "mfu_over_time", run_id=run, bucket_s=60, scope="generation")
    assert {r["scope"] for r in bucketed} == {"generation"}
    for r in bucketed:
        want = scalar(
            con,
            "SELECT sum(flops) / sum(peak_flops) FROM kpi WHERE run_id = ? AND scope = "
            "'generation' AND scope_id = ? AND tick_start_ns - (SELECT min(tick_start_ns) FROM "
            "kpi WHERE run_id = ?) BETWEEN ? AND ?",
            run,
            r["scope_id"],
            run,
            int(r["t_s"] * 1e9),
            int((r["t_s"] + 60) * 1e9) - 1,
        )
        assert close(r["mfu"], want)


@pytest.mark.parametrize("run", RUNS)
def test_recoverable_energy_recomputes_the_twins_column(
    con: duckdb.DuckDBPyConnection, run: str
) -> None:
    rec = rows(con, "recoverable_energy", run_id=run)
    assert {r["scope"] for r in rec} == {"facility", "campus", "generation"}
    for r in rec:  # m_ref 0.40 is what the twin computed recoverable_j with
        assert close(r["recoverable_mwh"], r["twin_recoverable_mwh"], rel=1e-9)
        assert 0.0 <= r["recoverable_mwh"] <= r["it_mwh"]
    (f,) = rows(con, "facility_summary", run_id=run)
    fac = next(r for r in rec if r["scope"] == "facility")
    assert close(fac["recoverable_mwh"], f["recoverable_mwh"])
    lower = next(r for r in rows(con, "recoverable_energy", run_id=run, m_ref=0.2)
                 if r["scope"] == "facility")  # fmt: skip
    assert lower["recoverable_mwh"] < fac["recoverable_mwh"]
    over_time = rows(con, "recoverable_over_time", run_id=run)
    cumulative = [r["cumulative_mwh"] for r in over_time]
    assert cumulative == sorted(cumulative)
    assert close(cumulative[-1], fac["recoverable_mwh"])
    assert close(over_time[-1]["cumulative_usd"], fac["recoverable_usd"])


def test_top_straggler_racks_ranked_and_costed(con: duckdb.DuckDBPyConnection) -> None:
    run = "small-leased"
    racks = rows(con, "top_straggler_racks", run_id=run, top=10_000)
    assert racks, "the single-campus job of small-leased has pacing racks"
    waited = [r["gpu_seconds_waited"] for r in racks]
    assert waited == sorted(waited, reverse=True)
    assert [r["rank"] for r in racks] == sorted(r["rank"] for r in racks)
    assert all(r["hall_id"] and r["campus_id"] and r["model"] for r in racks)
    # every GPU-second of straggler cost belongs to one rack and one job
    by_job = scalar(
        con, "SELECT sum(straggler_cost_gpu_s) FROM kpi WHERE run_id = ? AND scope = 'job'", run
    )
    assert close(sum(waited), by_job, rel=1e-9)
    assert close(sum(r["share"] for r in racks), 1.0)
    assert all(r["usd_waited"] > 0 and r["kwh_waited"] > 0 for r in racks)
    assert len(rows(con, "top_straggler_racks", run_id=run, top=3)) == 3
    assert rows(con, "top_straggler_racks", run_id=run)[0] == racks[0]  # default top 10


def test_tenant_economics_follow_the_lease_terms(con: duckdb.DuckDBPyConnection) -> None:
    run = "small-leased"
    tenants = {r["tenant_id"]: r for r in rows(con, "tenant_economics", run_id=run)}
    assert {"acme", "beta"} <= set(tenants)
    (f,) = rows(con, "facility_summary", run_id=run)
    # lease revenue accrues per second: usd_per_month x seconds / (730 h x 3600 s)
    for tenant, usd_per_month in (("acme", 12e6), ("beta", 9e6)):
        t = tenants[tenant]
        assert close(t["revenue_usd"], usd_per_month * f["seconds"] / (730 * 3600), rel=1e-6)
        assert close(t["usd_per_useful_pflop_h"], t["revenue_usd"] / t["useful_pflop_h"])
        assert close(t["margin_over_energy_usd"], t["revenue_usd"] - t["energy_usd"])
        assert 0.0 < t["mfu"] < 1.0
    assert tenants["acme"]["gpus"] == 2304
    assert tenants["beta"]["gpus"] == 1056
    assert close(sum(t["energy_usd"] for t in tenants.values()), f["energy_usd"], rel=1e-9)
    assert close(sum(t["useful_pflop_h"] for t in tenants.values()), f["useful_pflop_h"])
    mixed = rows(con, "tenant_economics", run_id="small")
    assert [t["tenant_id"] for t in mixed] == ["unleased"]
    assert mixed[0]["revenue_usd"] == 0


@pytest.mark.parametrize("run", RUNS)
def test_thermal_hotspots_are_the_hottest_racks(con: duckdb.DuckDBPyConnection, run: str) -> None:
    hot = rows(con, "thermal_hotspots", run_id=run)
    assert len(hot) == 10
    temps = [r["max_temp_c"] for r in hot]
    assert temps == sorted(temps, reverse=True)
    newest = scalar(con, "SELECT max(snapshot_id) FROM gpu_snapshot WHERE run_id = ?", run)
    assert {r["snapshot_id"] for r in hot} == {newest}
    hottest = scalar(
        con,
        "SELECT max(temp_c) FROM gpu_snapshot WHERE run_id = ? AND snapshot_id = ?",
        run,
        newest,
    )
    assert hot[0]["max_temp_c"] == hottest
    for r in hot[:3]:
        gpu_temp = scalar(
            con,
            "SELECT temp_c FROM gpu_snapshot WHERE run_id = ? AND snapshot_id = ? "
            "AND gpu_index = ?",
            run,
            newest,
            r["hottest_gpu_index"],
        )
        assert gpu_temp == r["max_temp_c"]
        assert r["mean_temp_c"] <= r["max_temp_c"]
    everything = rows(con, "thermal_hotspots", run_id=run, hot_c=-300, top=3, snapshot_id=1)
    assert all(r["gpus_at_or_above_hot_c"] == r["gpus"] for r in everything)
    assert {r["snapshot_id"] for r in everything} == {1}


def test_job_mfu_ranking_and_campuses(con: duckdb.DuckDBPyConnection) -> None:
    jobs = rows(con, "job_mfu_ranking", run_id="small-leased")
    assert [j["job_id"] for j in jobs] == ["acme-train", "beta-train"]  # one campus beats two
    assert [j["campuses"] for j in jobs] == [1, 2]
    assert all(0.0 < j["mfu"] < 1.0 for j in jobs)
    for j in jobs:
        flops, peak = con.execute(
            "SELECT sum(flops), sum(peak_flops) FROM kpi WHERE run_id = ? AND scope = 'job' "
            "AND scope_id = ?",
            ["small-leased", j["job_id"]],
        ).fetchone() or (None, None)
        assert close(j["mfu"], flops / peak)
    mixed = rows(con, "job_mfu_ranking", run_id="small")
    assert {j["job_id"] for j in mixed} == {"pretrain-1", "pretrain-2"}
    assert all(j["campuses"] == 2 for j in mixed)
    mfus = [j["mfu"] for j in mixed]
    assert mfus == sorted(mfus, reverse=True)


def test_campus_spanning_cost_splits_jobs_by_placement(con: duckdb.DuckDBPyConnection) -> None:
    groups = {g["placement"]: g for g in rows(con, "campus_spanning_cost", run_id="small-leased")}
    assert set(groups) == {"single campus", "spans campuses"}
    jobs = {j["job_id"]: j for j in rows(con, "job_mfu_ranking", run_id="small-leased")}
    single, spans = groups["single campus"], groups["spans campuses"]
    assert single["jobs"] == 1
    assert spans["jobs"] == 1
    assert close(single["mfu"], jobs["acme-train"]["mfu"])
    assert close(spans["mfu"], jobs["beta-train"]["mfu"])
    assert spans["comm_stall"] > single["comm_stall"]
    want = spans["energy_mwh"] * max(0.0, 1 - spans["mfu"] / single["mfu"])
    assert close(spans["excess_mwh"], want)
    assert single["excess_mwh"] is None
    mixed = rows(con, "campus_spanning_cost", run_id="small")
    assert [g["placement"] for g in mixed] == ["spans campuses"]
    assert mixed[0]["jobs"] == 2
    assert mixed[0]["excess_mwh"] is None
