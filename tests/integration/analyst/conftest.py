"""Two real small runs through the session's Kafka broker into one DuckDB file, for the analyst
tests (named queries, ``twin query``/``sql``/``report``/``compare``).

``twin run`` (a child process) simulates, folds with one Faust worker and lands in DuckDB, then
stops everything it started. The runs, named by their scenarios:

- ``small``: the shipped test-scale scenario (mixed generations, jobs spanning both campuses);
- ``small-leased`` (``small_leased.toml`` here): the same hardware leased to two tenants, one
  single-campus job and one cross-campus job, so tenant economics, straggler racks and the
  single- vs cross-campus comparison have rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.integration.analyst.support import AnalystRuns

HERE = Path(__file__).resolve().parent
LEASED_SCENARIO = HERE / "small_leased.toml"
DURATION = "2m"


def _twin_run(env: dict[str, str], scenario: str, group: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "streams.cli", "run", "--scenario", scenario,
         "--duration", DURATION, "--json"],
        env={**env, "TWIN_GROUP_ID": group},
        capture_output=True,
        text=True,
        timeout=540,  # a safety net against a hung child, not a performance threshold
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


@pytest.fixture(scope="session")
def analyst_runs(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AnalystRuns:
    data = tmp_path_factory.mktemp("analyst-data")
    env = {k: v for k, v in os.environ.items() if k != "TWIN_RUN_ID"}
    env.update(
        TWIN_KAFKA_BOOTSTRAP=kafka_bootstrap,
        TWIN_DATA_DIR=str(data),
        TWIN_DUCKDB_PATH=str(data / "twin.duckdb"),
    )
    summaries = {
        "small": _twin_run(env, "small", "analyst-small"),
        "small-leased": _twin_run(env, str(LEASED_SCENARIO), "analyst-small-leased"),
    }
    return AnalystRuns(db=data / "twin.duckdb", env=env, summaries=summaries)


@pytest.fixture
def con(analyst_runs: AnalystRuns) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(analyst_runs.db), read_only=True)
    try:
        yield connection
    finally:
        connection.close()
