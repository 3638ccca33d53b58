"""Named-query files, parameter binding, output formats and the analyst commands' flags, without
a broker; the spanning-campus method on hand-written rows (the real-run tests are in
tests/integration/analyst/)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from streams.cli.main import build_parser, main
from streams.output import format_cell, render
from streams.queries import QUERY_DIR, QueryError, bind_params, list_queries, load_query, run_query
from streams.report import FIGURES, report_data, write_report
from streams.store import DDL
from twin.results import KPI_COLUMNS

ANALYST_COMMANDS = ("query", "sql", "report", "compare")
NOT_SETTINGS = {"--list", "--param", "--format", "--max-rows", "--out", "--top"}


def test_every_query_file_has_a_header_naming_it_and_typing_its_params() -> None:
    files = sorted(QUERY_DIR.glob("*.sql"))
    assert len(files) >= 12
    for path in files:
        lines = path.read_text().splitlines()
        assert lines[0].startswith(f"-- {path.stem}: "), path.name
        header = [ln for ln in lines if ln.startswith("--")]
        declared_line = next(ln for ln in header if ln.startswith("-- params:"))
        declared = re.findall(r"([a-z_]+) \(", declared_line)
        used = set(re.findall(r"\$([a-z_]+)", path.read_text()))
        assert set(declared) == used, path.name
        q = load_query(path.stem)
        assert set(q.types) == used, path.name
        assert q.params[0] == "run_id", path.name
        for name, default in q.defaults.items():  # defaults cast to their declared types
            bind_params(q, {"run_id": "r", name: default})


def test_bind_params_casts_fills_defaults_and_names_what_is_wrong() -> None:
    q = load_query("thermal_hotspots")
    bound = bind_params(q, {"run_id": "42", "top": "3"})
    assert bound == {"run_id": "42", "top": 3, "hot_c": 80.0, "snapshot_id": 0}
    with pytest.raises(QueryError, match="top must be an integer, got 'x'"):
        bind_params(q, {"run_id": "r", "top": "x"})
    with pytest.raises(QueryError, match="has no parameter 'tpo'"):
        bind_params(q, {"run_id": "r", "tpo": "3"})
    with pytest.raises(QueryError, match="needs --param run_id=VALUE"):
        bind_params(q, {})
    with pytest.raises(QueryError, match=r"no query named 'nope'; known queries: .*waste_ledger"):
        load_query("nope")
    with pytest.raises(QueryError, match="no query named"):
        load_query("../streams/queries")


def _db(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    for ddl in DDL:
        con.execute(ddl)
    return con


def _kpi(con: duckdb.DuckDBPyConnection, tick: int, scope: str, sid: str, **v: float) -> None:
    cols = dict.fromkeys(KPI_COLUMNS, 0.0) | v
    names = ", ".join(["run_id", "tick_start_ns", "tick_end_ns", "scope", "scope_id", *cols])
    marks = ", ".join("?" * (5 + len(cols)))
    con.execute(
        f"INSERT INTO kpi ({names}) VALUES ({marks})",
        ["r", tick * 10**10, (tick + 1) * 10**10, scope, sid, *cols.values()],
    )


def _gpu(con: duckdb.DuckDBPyConnection, snap: int, gpu: int, campus: str, job: str) -> None:
    con.execute(
        "INSERT INTO gpu_snapshot (run_id, snapshot_id, tick_end_ns, gpu_index, rack_id, "
        "campus_id, job_id, temp_c) VALUES ('r', ?, ?, ?, 'rk', ?, ?, 50)",
        [snap, snap * 10**10, gpu, campus, job],
    )


def test_campus_spanning_method_on_hand_written_rows(tmp_path: Path) -> None:
    con = _db(tmp_path)
    # "a" stays on one campus; "b" moves onto two campuses in snapshot 2; "c" is never seen
    for snap in (1, 2):
        _gpu(con, snap, 0, "east", "a")
        _gpu(con, snap, 1, "east", "a")
        _gpu(con, snap, 2, "east", "b")
        _gpu(con, snap, 3, "west" if snap == 2 else "east", "b")
    for tick in range(2):
        _kpi(con, tick, "job", "a", gpus=2, flops=40, peak_flops=100, energy_j=3.6e9,
             comm_stall=0.1, energy_usd=60, useful_pflop_h=1)  # fmt: skip
        _kpi(con, tick, "job", "b", gpus=2, flops=10, peak_flops=100, energy_j=3.6e9,
             comm_stall=0.5, energy_usd=60, useful_pflop_h=0.25)  # fmt: skip
        _kpi(con, tick, "job", "c", gpus=1, flops=5, peak_flops=50, energy_j=1.8e9)
    cols, data = run_query(con, load_query("campus_spanning_cost"), {"run_id": "r"})
    got = {r[0]: dict(zip(cols, r, strict=True)) for r in data}
    assert list(got) == ["single campus", "spans campuses", "unknown"]
    assert got["single campus"]["mfu"] == pytest.approx(0.4)
    spans = got["spans campuses"]
    assert spans["mfu"] == pytest.approx(0.1)
    assert spans["comm_stall"] == pytest.approx(0.5)
    assert spans["energy_mwh"] == pytest.approx(2.0)
    assert spans["excess_mwh"] == pytest.approx(2.0 * (1 - 0.1 / 0.4))
    assert spans["excess_usd"] == pytest.approx(120 * (1 - 0.1 / 0.4))
    assert got["unknown"]["jobs"] == 1
    assert got["unknown"]["excess_mwh"] is None
    cols, data = run_query(con, load_query("job_mfu_ranking"), {"run_id": "r", "top": 10})
    ranked = [dict(zip(cols, r, strict=True)) for r in data]
    assert [(j["job_id"], j["campuses"]) for j in ranked] == [("a", 1), ("b", 2), ("c", None)]


def test_straggler_racks_sum_every_tick_and_rank(tmp_path: Path) -> None:
    con = _db(tmp_path)
    for tick in range(3):
        _kpi(con, tick, "facility", "facility", gpus=10, straggler_wait=0.1,
             straggler_wait_j=1000.0, energy_j=2e4, energy_usd=2.0)  # fmt: skip
        _kpi(con, tick, "rack", "r1", straggler_cost_gpu_s=1.0)
        _kpi(con, tick, "rack", "r2", straggler_cost_gpu_s=2.0 if tick == 0 else 0.0)
        _kpi(con, tick, "rack", "r3", straggler_cost_gpu_s=0.0)
    cols, data = run_query(con, load_query("top_straggler_racks"), {"run_id": "r"})
    got = [dict(zip(cols, r, strict=True)) for r in data]
    # r3 never paced a job: left out; r2's one tick counts though it is not in the others
    assert [(r["rank"], r["rack_id"], r["gpu_seconds_waited"]) for r in got] == [
        (1, "r1", 3.0),
        (2, "r2", 2.0),
    ]
    # a waiting GPU-second: 1000 J / (0.1 x 10 GPUs x 10 s) = 100 J; price 1e-4 $/J
    assert got[0]["kwh_waited"] == pytest.approx(3.0 * 100 / 3.6e6)
    assert got[0]["usd_waited"] == pytest.approx(3.0 * 100 * 1e-4)
    assert got[0]["ticks_pacing"] == 3
    assert got[1]["ticks_pacing"] == 1


def test_output_formats_carry_nulls_nan_times_and_blobs() -> None:
    cols = ["name", "x", "at", "blob"]
    data: list[tuple[Any, ...]] = [
        ("a", 1.5, datetime(2026, 10, 1, 0, 0, 10), b"\x01\x02"),
        ("b", float("nan"), None, None),
    ]
    parsed = json.loads(render("json", cols, data))
    assert parsed == [
        {"name": "a", "x": 1.5, "at": "2026-10-01T00:00:10", "blob": "0102"},
        {"name": "b", "x": None, "at": None, "blob": None},
    ]
    lines = list(csv.reader(io.StringIO(render("csv", cols, data))))
    assert lines == [cols, ["a", "1.5", "2026-10-01T00:00:10", "0102"], ["b", "nan", "", ""]]
    table = render("table", cols, data, title="t")
    assert "2026-10-01 00:00:10" in table
    assert "<2 bytes>" in table
    assert render("table", ["n"], [(i,) for i in range(5)], max_rows=2).count("more rows") == 1
    assert [format_cell(v) for v in (3360.0, 1234567.891, 2.5, 0.012341, None, True)] == [
        "3,360", "1,234,568", "2.500", "0.01234", "", "true",
    ]  # fmt: skip


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@pytest.mark.parametrize("command", ANALYST_COMMANDS)
def test_setting_flags_name_their_environment_variable(command: str) -> None:
    parser = _subparsers(build_parser())[command]
    seen = set()
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flag = action.option_strings[0]
        seen.add(flag)
        if flag not in NOT_SETTINGS:
            assert re.search(r"\[env: TWIN_[A-Z_]+\]", action.help or ""), flag
    assert {"--duckdb-path", "--data-dir"} <= seen


def test_query_list_needs_no_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["query", "--list", "--format", "csv", "--duckdb-path", str(tmp_path / "no")])
    assert code == 0
    names = [r["name"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert names == [q.name for q in list_queries()]


def test_report_on_a_long_run_with_no_tenants_or_stragglers(tmp_path: Path) -> None:
    con = _db(tmp_path)
    con.execute("INSERT INTO runs (run_id, scenario, seed, tick_ns) VALUES ('r', 's', 1, 10e9)")
    for tick in range(300):
        for scope, sid in (("facility", "facility"), ("generation", "H100")):
            _kpi(con, tick, scope, sid, gpus=8, flops=tick % 7, peak_flops=10, energy_j=3.6e9)
        con.execute(
            "INSERT INTO ledger VALUES ('r', ?, 10, 62, 'useful', 3.6e9, 62)", [(tick + 1) * 10**10]
        )
    data = report_data(con, "r")
    assert data["bucket_s"] == 20.0  # 300 ticks of 10 s in at most 240 points
    assert len([r for r in data["mfu_over_time"] if r["scope"] == "facility"]) == 150
    report = write_report(con, "r", tmp_path / "out")
    assert [p.name for p in report.figures] == list(FIGURES)
    assert all(p.stat().st_size > 1000 for p in report.figures)
    page = report.index.read_text()
    assert page.count("no rows") >= 2  # no straggler racks, no tenants
