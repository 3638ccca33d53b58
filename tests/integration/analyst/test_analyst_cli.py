"""`twin query`, `twin sql`, `twin report` and `twin compare` on the file the real runs wrote."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from streams.cli.main import main
from streams.queries import list_queries
from streams.report import FIGURES
from tests.integration.analyst.support import AnalystRuns, rows

pytestmark = pytest.mark.integration

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def twin(runs: AnalystRuns, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--duckdb-path", str(runs.db)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def _no_run_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWIN_RUN_ID", raising=False)


def test_query_list_names_every_file(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = twin(analyst_runs, capsys, "query", "--list", "--format", "json")
    assert code == 0
    listed = json.loads(out)
    assert [q["name"] for q in listed] == [q.name for q in list_queries()]
    assert all(q["description"] and "run_id (text)" in q["parameters"] for q in listed)
    code, out, _ = twin(analyst_runs, capsys, "query", "--list")
    assert code == 0
    assert "thermal_hotspots" in out
    assert "top (integer, default 10)" in out


def test_query_formats_parse_and_agree(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str], con: duckdb.DuckDBPyConnection
) -> None:
    want = rows(con, "waste_ledger", run_id="small")
    code, out, _ = twin(analyst_runs, capsys, "query", "waste_ledger", "--run", "small",
                        "--format", "csv")  # fmt: skip
    assert code == 0
    got = list(csv.DictReader(io.StringIO(out)))
    assert [r["cause"] for r in got] == [r["cause"] for r in want]
    assert [float(r["mwh"]) for r in got] == [r["mwh"] for r in want]  # full precision
    code, out, _ = twin(analyst_runs, capsys, "query", "waste_ledger", "--run", "small",
                        "--format", "json")  # fmt: skip
    assert code == 0
    assert json.loads(out) == want
    code, out, _ = twin(analyst_runs, capsys, "query", "waste_ledger", "--run", "small")
    assert code == 0
    assert "waste_ledger, run small" in out
    assert all(r["cause"] in out for r in want)


def test_query_params_are_bound_and_cast(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = twin(analyst_runs, capsys, "query", "top_straggler_racks", "--run",
                        "small-leased", "--param", "top=2", "--format", "json")  # fmt: skip
    assert code == 0
    assert len(json.loads(out)) == 2
    # run_id from --param wins; a value with SQL in it is only ever a value
    code, out, _ = twin(analyst_runs, capsys, "query", "facility_summary", "--param",
                        "run_id=small' OR '1'='1", "--format", "json")  # fmt: skip
    assert code == 2  # no such run (and no injection)


def test_run_defaults_to_twin_run_id_then_the_newest_run(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = twin(analyst_runs, capsys, "query", "facility_summary", "--format", "json")
    assert code == 0
    assert "run small-leased (the newest" in err  # the fixture ran it second
    assert json.loads(out)[0]["mfu"] == analyst_runs.summaries["small-leased"]["facility"][0]["mfu"]
    monkeypatch.setenv("TWIN_RUN_ID", "small")
    code, out, err = twin(analyst_runs, capsys, "query", "facility_summary", "--format", "json")
    assert code == 0
    assert err == ""
    assert json.loads(out)[0]["mfu"] == analyst_runs.summaries["small"]["facility"][0]["mfu"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["query", "no_such_query"], "no query named 'no_such_query'; known queries: "),
        (["query", "waste_ledger", "--param", "top=3"], "has no parameter 'top'"),
        (["query", "top_straggler_racks", "--param", "top=ten"], "top must be an integer"),
        (["query", "waste_ledger", "--param", "oops"], "expected NAME=VALUE"),
        (["query", "waste_ledger", "--run", "no-such-run"], "no run named 'no-such-run'"),
        (["query"], "give a query NAME"),
        (["sql", "SELEC 1"], "Parser Error"),
        (["sql", "DELETE FROM kpi"], "read-only"),
        (["sql", "SELECT * FROM no_such_table"], "no_such_table does not exist"),
        (["sql", "SELECT $missing"], "missing"),
        (["compare", "small", "no-such-run"], "no run named 'no-such-run'"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = twin(analyst_runs, capsys, *argv)
    assert code == 2, (out, err)
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_file_and_a_file_a_worker_holds(analyst_runs: AnalystRuns, tmp_path: Path) -> None:
    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streams.cli", *argv], env=analyst_runs.env,
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    missing = run("query", "waste_ledger", "--duckdb-path", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2
    assert "no DuckDB file at" in missing.stderr
    assert "Traceback" not in missing.stderr
    copy = tmp_path / "held.duckdb"
    shutil.copy(analyst_runs.db, copy)
    holder = subprocess.Popen(  # a writer holding the file, like a running worker
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); sys.stdin.read()", str(copy)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        held = run("query", "waste_ledger", "--duckdb-path", str(copy))
    finally:
        holder.communicate(timeout=60)  # closing stdin lets it exit
    assert held.returncode == 2
    assert "open for writing by another process" in held.stderr
    assert f"PID {holder.pid}" in held.stderr
    assert "Traceback" not in held.stderr


def test_sql_binds_run_id_and_params(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str], con: duckdb.DuckDBPyConnection
) -> None:
    sql = "SELECT count(*) AS n FROM kpi WHERE run_id = $run_id AND scope = $scope"
    code, out, _ = twin(analyst_runs, capsys, "sql", sql, "--run", "small", "--param",
                        "scope=rack", "--format", "json")  # fmt: skip
    assert code == 0
    want = con.execute(
        "SELECT count(*) FROM kpi WHERE run_id = 'small' AND scope = 'rack'"
    ).fetchone()
    assert want is not None
    assert json.loads(out) == [{"n": want[0]}]
    code, out, _ = twin(analyst_runs, capsys, "sql", "SELECT run_id FROM runs ORDER BY run_id",
                        "--format", "csv")  # fmt: skip
    assert code == 0
    assert out.splitlines() == ["run_id", "small", "small-leased"]


def test_report_writes_every_figure_and_an_offline_page(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for run in ("small", "small-leased"):
        out_dir = tmp_path / run
        code, out, err = twin(analyst_runs, capsys, "report", "--out", str(out_dir), "--run", run)
        assert code == 0, err
        index = out_dir / "index.html"
        assert str(index) in out
        page = index.read_text()
        for name in FIGURES:
            png = out_dir / name
            data = png.read_bytes()
            assert len(data) > 1000, name
            assert data.startswith(PNG_MAGIC), name
            assert f'src="{name}"' in page
        assert "http://" not in page
        assert "https://" not in page
        assert "<script" not in page
        assert f"run {run}" in page
    page = (tmp_path / "small-leased" / "index.html").read_text()
    for tenant in ("acme", "beta"):
        assert tenant in page


def test_compare_side_by_side_with_difference_and_ratio(
    analyst_runs: AnalystRuns, capsys: pytest.CaptureFixture[str], con: duckdb.DuckDBPyConnection
) -> None:
    code, out, _ = twin(analyst_runs, capsys, "compare", "small", "small-leased", "--format",
                        "json")  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data
    assert set(data[0]) == {
        "section",
        "metric",
        "unit",
        "small",
        "small-leased",
        "difference",
        "ratio",
    }
    assert {r["section"] for r in data} == {"facility", "waste", "generation", "placement",
                                            "tenant"}  # fmt: skip
    for r in data:
        a, b = r["small"], r["small-leased"]
        if a is None or b is None:
            assert r["difference"] is None
            assert r["ratio"] is None
            continue
        assert math.isclose(r["difference"], b - a, rel_tol=1e-12, abs_tol=1e-15)
        if a == 0:
            assert r["ratio"] is None
        else:
            assert math.isclose(r["ratio"], b / a, rel_tol=1e-12)
    metric = {(r["section"], r["metric"]): r for r in data}
    mfu = metric[("facility", "MFU")]
    for run in ("small", "small-leased"):
        assert mfu[run] == rows(con, "facility_summary", run_id=run)[0]["mfu"]
    assert metric[("tenant", "acme: revenue")]["small"] is None
    assert metric[("tenant", "acme: revenue")]["small-leased"] > 0
    assert metric[("placement", "single campus: MFU")]["small"] is None
    code, out, _ = twin(analyst_runs, capsys, "compare", "small", "small-leased")
    assert code == 0
    assert "small-leased (B) against small (A)" in out
    assert "difference" in out
