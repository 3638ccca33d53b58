"""``twin export``: a run's tables as Hive-partitioned Parquet that reads back row for row."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from streams import store
from streams.export import ExportError, export_run
from streams.pipeline import Pipeline
from tests.unit.stream_support import simulated_records
from twin.state import TwinState


def _database(path: Path, runs: tuple[str, ...] = ("a", "b")) -> int:
    """A twin DuckDB file holding ``runs`` (the same 60 s of the small scenario); ticks each."""
    pipeline = Pipeline(TwinState())
    records = list(simulated_records(60.0))
    assert not pipeline.ingest(records)
    ticks = pipeline.advance() + pipeline.flush()
    con = duckdb.connect(str(path))
    try:
        for ddl in store.DDL:
            con.execute(ddl)
        for run in runs:
            store.tick_op(run, ticks)(con)
    finally:
        con.close()
    return len(ticks)


def _read(out: Path, table: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        f"CREATE VIEW t AS SELECT * FROM read_parquet('{out / table}/**/*.parquet', "
        "hive_partitioning = true)"
    )
    return con


def test_export_partitions_by_run_day_and_scope_and_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "twin.duckdb"
    n_ticks = _database(db)
    out = tmp_path / "lake"
    con = duckdb.connect(str(db), read_only=True)
    done = {d.table: d for d in export_run(con, "a", out)}
    assert set(done) == {"kpi", "ledger", "stragglers", "tick_counts"}
    want = con.execute(
        "SELECT scope, count(*), sum(energy_j), sum(flops) FROM kpi WHERE run_id = 'a' "
        "GROUP BY scope ORDER BY scope"
    ).fetchall()
    assert done["kpi"].rows == sum(r[1] for r in want)
    con.close()
    scopes = sorted(p.name for p in (out / "kpi" / "run_id=a").glob("day=*/scope=*"))
    assert scopes == sorted(f"scope={r[0]}" for r in want)
    assert not (out / "kpi" / "run_id=b").exists()  # only the run asked for
    lake = _read(out, "kpi")
    cols = "run_id, tick_end_ns, scope, scope_id, gpus, mfu, energy_j, flops, revenue_usd"
    order = "ORDER BY tick_end_ns, scope, scope_id"
    got = lake.execute(f"SELECT {cols} FROM t {order}").fetchall()
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(f"SELECT {cols} FROM kpi WHERE run_id = 'a' {order}").fetchall()
    con.close()
    assert got == rows  # every value, bit for bit
    days = lake.execute("SELECT DISTINCT day FROM t").fetchall()
    assert len(days) == 1
    ticks = lake.execute("SELECT count(DISTINCT tick_end_ns) FROM t").fetchone()
    assert ticks == (n_ticks,)


def test_export_again_replaces_the_run_only(tmp_path: Path) -> None:
    db = tmp_path / "twin.duckdb"
    _database(db)
    out = tmp_path / "lake"
    con = duckdb.connect(str(db), read_only=True)
    export_run(con, "a", out, ["ledger"])
    export_run(con, "b", out, ["ledger"])
    first = _read(out, "ledger").execute("SELECT run_id, count(*) FROM t GROUP BY 1").fetchall()
    export_run(con, "a", out, ["ledger"])
    again = _read(out, "ledger").execute("SELECT run_id, count(*) FROM t GROUP BY 1").fetchall()
    assert sorted(first) == sorted(again)
    assert {r[0] for r in again} == {"a", "b"}
    with pytest.raises(ExportError, match="tables are"):
        export_run(con, "a", out, ["snapshots"])
    with pytest.raises(ExportError, match="no rows"):
        export_run(con, "nope", out, ["kpi"])
    con.close()


def test_twin_export_command(tmp_path: Path) -> None:
    db = tmp_path / "twin.duckdb"
    _database(db, ("only",))
    run = [sys.executable, "-m", "streams.cli", "export"]
    ok = subprocess.run([*run, str(tmp_path / "lake"), "--duckdb-path", str(db)],
                        capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "kpi:" in ok.stdout
    assert "run_id=" not in ok.stderr
    assert any((tmp_path / "lake" / "kpi" / "run_id=only").rglob("*.parquet"))
    bad = subprocess.run([*run, str(tmp_path / "x"), "--duckdb-path", str(db), "--run", "nope"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2
    assert "no run named 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
