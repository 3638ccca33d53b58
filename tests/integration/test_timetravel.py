"""Time travel against a real broker: the twin rebuilt at a past event time (nearest snapshot +
log replay) equals the KPI rows the live run wrote for that tick."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import duckdb
import pytest

from streams.settings import Settings
from streams.timetravel import TimeTravelError, rebuild_at
from twin.results import KPI_COLUMNS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live_run(broker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("timetravel")
    env = dict(os.environ)
    env.update(
        TWIN_KAFKA_BOOTSTRAP=broker_settings.bootstrap_servers,
        TWIN_DATA_DIR=str(data),
        TWIN_SNAPSHOT_EVERY="4",
        TWIN_RUN_ID="tt",
        TWIN_GROUP_ID="test-timetravel",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "run", "--scenario", "small", "--duration", "2m",
         "--json"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Settings(
        kafka_bootstrap=broker_settings.bootstrap_servers, data_dir=data, run_id="tt"
    )


def _live(settings: Settings, tick_end: int) -> dict[tuple[str, str], tuple[float, ...]]:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        rows = con.execute(
            f"SELECT scope, scope_id, {', '.join(KPI_COLUMNS)} FROM kpi"
            " WHERE run_id = 'tt' AND tick_end_ns = ?",
            [tick_end],
        ).fetchall()
    finally:
        con.close()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def _snapshot_ends(settings: Settings) -> list[int]:
    con = duckdb.connect(str(settings.duckdb_path), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT tick_end_ns FROM snapshots WHERE run_id = 'tt' ORDER BY 1").fetchall()]
    finally:
        con.close()


@pytest.mark.parametrize("offset_s", [15, 75, 105])
def test_rebuilt_tick_equals_the_live_kpi_rows(live_run: Settings, offset_s: int) -> None:
    ends = _snapshot_ends(live_run)
    assert len(ends) >= 2, "the run should have written several snapshots"
    start = ends[0] - 40 * 10**9  # snapshot 1 closes the 4th tick of the run
    at = start + offset_s * 10**9
    rebuilt = rebuild_at(live_run, live_run.bootstrap_servers, "tt", at)
    tick = rebuilt.tick
    assert tick.start_ns <= at < tick.end_ns
    expected_origin = None if at < ends[0] else max(i + 1 for i, e in enumerate(ends) if e <= at)
    assert rebuilt.from_snapshot == expected_origin
    live = _live(live_run, tick.end_ns)
    assert live, "the live run wrote no row for that tick"
    compared = 0
    for scope, table in tick.scopes.items():
        for sid in table.ids:
            want = live[(scope, sid)]
            got = table.columns[:, table.ids.index(sid)]
            for name, a, b in zip(KPI_COLUMNS, got, want, strict=True):
                assert (math.isnan(a) and (b is None or math.isnan(b))) or math.isclose(
                    a, b, rel_tol=1e-9, abs_tol=1e-9
                ), (scope, sid, name, a, b)
            compared += 1
    assert compared == len(live)


def test_a_time_outside_the_run_is_a_clear_error(live_run: Settings) -> None:
    with pytest.raises(TimeTravelError, match="outside"):
        rebuild_at(live_run, live_run.bootstrap_servers, "tt", 0)
    with pytest.raises(TimeTravelError, match="no run named"):
        rebuild_at(live_run, live_run.bootstrap_servers, "nope", 0)
