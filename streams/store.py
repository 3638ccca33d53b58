"""The DuckDB side of the twin: table schema, tick rows as Arrow, snapshots with their offsets.

Every function that writes returns an *operation* for :class:`streams.writer.DuckDBWriter`
(a callable run inside the writer thread, in one transaction). The Arrow tables are built in the
caller's thread from numpy columns; DuckDB appends them with ``INSERT ... SELECT`` from Arrow,
never row by row. The schema is documented for analysts in docs/TABLES.md.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa

from twin.gpus import MODEL_NAMES
from twin.results import KPI_COLUMNS, TickResult
from twin.state import TwinState

__all__ = [
    "DDL",
    "SNAPSHOT_FORMAT",
    "Snapshot",
    "deadletter_op",
    "latest_snapshot",
    "rewind_op",
    "snapshot_op",
    "tick_op",
]

SNAPSHOT_FORMAT: Final = 1

_KPI_COLS = ",\n    ".join(f"{c} DOUBLE" for c in KPI_COLUMNS)
DDL: Final[tuple[str, ...]] = (
    """CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, scenario VARCHAR, seed BIGINT, tick_ns BIGINT,
    started_at TIMESTAMP DEFAULT current_timestamp, config JSON)""",
    f"""CREATE TABLE IF NOT EXISTS kpi (
    run_id VARCHAR, tick_start_ns BIGINT, tick_end_ns BIGINT, scope VARCHAR, scope_id VARCHAR,
    {_KPI_COLS})""",
    """CREATE TABLE IF NOT EXISTS ledger (
    run_id VARCHAR, tick_end_ns BIGINT, dt_s DOUBLE, usd_per_mwh DOUBLE, cause VARCHAR,
    energy_j DOUBLE, cost_usd DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS stragglers (
    run_id VARCHAR, tick_end_ns BIGINT, level VARCHAR, id VARCHAR, rank INTEGER,
    cost_gpu_s DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS tick_counts (
    run_id VARCHAR, tick_end_ns BIGINT, counter VARCHAR, n BIGINT)""",
    """CREATE TABLE IF NOT EXISTS snapshots (
    run_id VARCHAR, snapshot_id BIGINT, tick_end_ns BIGINT, checksum VARCHAR, offsets JSON,
    format INTEGER, state BLOB, created_at TIMESTAMP DEFAULT current_timestamp)""",
    """CREATE TABLE IF NOT EXISTS gpu_snapshot (
    run_id VARCHAR, snapshot_id BIGINT, tick_end_ns BIGINT, gpu_index INTEGER,
    rack_id VARCHAR, hall_id VARCHAR, campus_id VARCHAR, model VARCHAR, job_id VARCHAR,
    tenant_id VARCHAR, status TINYINT, power_w DOUBLE, temp_c DOUBLE, compute DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS deadletters (
    run_id VARCHAR, topic VARCHAR, partition INTEGER, "offset" BIGINT, reason VARCHAR,
    value BLOB, received_at TIMESTAMP DEFAULT current_timestamp)""",
    """CREATE OR REPLACE VIEW lease_accounting AS
    SELECT run_id, tick_end_ns, scope_id AS tenant_id, gpus, revenue_usd, energy_usd,
           useful_pflop_h, usd_per_useful_pflop_h, energy_usd_per_useful_pflop_h, mfu
    FROM kpi WHERE scope = 'tenant'""",
)

#: Tables whose rows belong to one tick of one run (rewound on recovery).
TICK_TABLES: Final = ("kpi", "ledger", "stragglers", "tick_counts")
_LEDGER_CAUSES: Final = (
    "useful",
    "kernel_inefficiency",
    "straggler_wait",
    "comm_stall",
    "allocated_idle",
    "unallocated",
    "down",
    "overhead",
)

Op = Callable[[duckdb.DuckDBPyConnection], Any]


def _append(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    con.register("_arrow_in", data)
    try:
        cols = ", ".join(f'"{c}"' for c in data.column_names)
        con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _arrow_in")
    finally:
        con.unregister("_arrow_in")


def tick_tables(run_id: str, tick: TickResult) -> dict[str, pa.Table]:
    """One closed tick as Arrow tables, one per DuckDB table."""
    kpi_parts: list[pa.Table] = []
    for scope, table in tick.scopes.items():
        n = len(table.ids)
        if n == 0:
            continue
        cols: dict[str, Any] = {
            "run_id": pa.array([run_id] * n, pa.string()),
            "tick_start_ns": np.full(n, tick.start_ns, np.int64),
            "tick_end_ns": np.full(n, tick.end_ns, np.int64),
            "scope": pa.array([scope] * n, pa.string()),
            "scope_id": pa.array(table.ids, pa.string()),
        }
        for k, name in enumerate(KPI_COLUMNS):
            cols[name] = table.columns[k]
        kpi_parts.append(pa.table(cols))
    led = tick.ledger
    energy = np.array([getattr(led, f"{c}_j") for c in _LEDGER_CAUSES], np.float64)
    ledger = pa.table(
        {
            "run_id": [run_id] * len(_LEDGER_CAUSES),
            "tick_end_ns": np.full(len(_LEDGER_CAUSES), tick.end_ns, np.int64),
            "dt_s": np.full(len(_LEDGER_CAUSES), tick.dt_s),
            "usd_per_mwh": np.full(len(_LEDGER_CAUSES), tick.usd_per_mwh),
            "cause": list(_LEDGER_CAUSES),
            "energy_j": energy,
            "cost_usd": energy / 3.6e9 * tick.usd_per_mwh,
        }
    )
    s = tick.stragglers
    levels = (
        ("gpu", [str(int(g)) for g in s.gpu_index], s.gpu_cost_gpu_s),
        ("rack", list(s.rack_ids), s.rack_cost_gpu_s),
        ("generation", list(s.generation_ids), s.generation_cost_gpu_s),
    )
    rows: dict[str, list[Any]] = {k: [] for k in ("level", "id", "rank", "cost_gpu_s")}
    for level, ids, cost in levels:
        rows["level"].extend([level] * len(ids))
        rows["id"].extend(ids)
        rows["rank"].extend(range(1, len(ids) + 1))
        rows["cost_gpu_s"].extend(float(c) for c in cost)
    n_s = len(rows["id"])
    stragglers = pa.table(
        {"run_id": [run_id] * n_s, "tick_end_ns": np.full(n_s, tick.end_ns, np.int64), **rows}
    )
    counts = pa.table(
        {
            "run_id": [run_id] * len(tick.counts),
            "tick_end_ns": np.full(len(tick.counts), tick.end_ns, np.int64),
            "counter": list(tick.counts),
            "n": np.array(list(tick.counts.values()), np.int64),
        }
    )
    out = {"ledger": ledger, "stragglers": stragglers, "tick_counts": counts}
    if kpi_parts:
        out["kpi"] = pa.concat_tables(kpi_parts)
    return out


def tick_op(run_id: str, ticks: list[TickResult]) -> Op:
    """Append the rows of ``ticks`` (built now, written by the writer thread)."""
    tables = [tick_tables(run_id, t) for t in ticks]

    def op(con: duckdb.DuckDBPyConnection) -> int:
        for per_tick in tables:
            for name, data in per_tick.items():
                _append(con, name, data)
        return len(tables)

    return op


def run_op(
    run_id: str, scenario: str | None, seed: int | None, tick_ns: int, config: Mapping[str, Any]
) -> Op:
    """Register a run (once; a restarted worker keeps the first registration)."""

    def op(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "INSERT INTO runs (run_id, scenario, seed, tick_ns, config) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [run_id, scenario, seed, tick_ns, json.dumps(dict(config), default=str)],
        )

    return op


def deadletter_op(run_id: str, rows: list[tuple[str, int, int, str, bytes | None]]) -> Op:
    data = pa.table(
        {
            "run_id": [run_id] * len(rows),
            "topic": [r[0] for r in rows],
            "partition": pa.array([r[1] for r in rows], pa.int32()),
            "offset": pa.array([r[2] for r in rows], pa.int64()),
            "reason": [r[3] for r in rows],
            "value": pa.array([r[4] for r in rows], pa.binary()),
        }
    )

    def op(con: duckdb.DuckDBPyConnection) -> None:
        _append(con, "deadletters", data)

    return op


def _offsets_json(offsets: Mapping[tuple[str, int], int]) -> str:
    return json.dumps(
        [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(offsets.items())]
    )


def gpu_table(run_id: str, snapshot_id: int, state: TwinState) -> pa.Table:
    """Per-GPU state as an Arrow table; id columns are dictionary-encoded (no Python loop)."""
    n = state.n["gpu"]

    def ids(codes: np.ndarray[Any, Any], names: list[str] | tuple[str, ...]) -> pa.Array:
        dictionary = pa.array(list(names) or [""], pa.string())
        idx = pa.array(codes.astype(np.int32), mask=codes < 0)
        return pa.DictionaryArray.from_arrays(idx, dictionary)

    rack = state.gpu_rack[:n]
    hall = np.where(rack >= 0, state.rack_hall[np.maximum(rack, 0)], -1)
    campus = np.where(rack >= 0, state.rack_campus[np.maximum(rack, 0)], -1)
    lease = state.gpu_lease[:n]
    # a GPU with no lease belongs to tenant 0, "unleased"
    lease_tenant = state.lease_tenant[: max(state.n["lease"], 1)].astype(np.int64)
    tenant = np.where(lease >= 0, lease_tenant[np.maximum(lease, 0)], 0)
    return pa.table(
        {
            "run_id": pa.array([run_id] * n, pa.string()),
            "snapshot_id": np.full(n, snapshot_id, np.int64),
            "tick_end_ns": np.full(n, state.tick_start_ns, np.int64),
            "gpu_index": np.arange(n, dtype=np.int32),
            "rack_id": ids(rack, state.rack_ids),
            "hall_id": ids(hall, state.hall_ids),
            "campus_id": ids(campus, state.campus_ids),
            "model": ids(state.gpu_model[:n].astype(np.int64), MODEL_NAMES),
            "job_id": ids(state.gpu_job[:n].astype(np.int64), state.job_ids),
            "tenant_id": ids(tenant, state.tenant_ids),
            "status": state.gpu_status[:n].copy(),  # written later, by the writer thread
            "power_w": state.gpu_last_power_w[:n].astype(np.float64),
            "temp_c": state.gpu_last_temp_c[:n].astype(np.float64),
            "compute": state.gpu_last_compute[:n].astype(np.float64),
        }
    )


def snapshot_op(
    run_id: str,
    snapshot_id: int,
    state: TwinState,
    offsets: Mapping[tuple[str, int], int],
    checksum: str,
    *,
    per_gpu: bool = True,
) -> Op:
    """Write the whole state (pickled numpy arrays) with the offsets it includes, and (optionally)
    the per-GPU rows analysts query, in one transaction. Serializes now, in the caller."""
    blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    tick_end = state.tick_start_ns  # the last closed tick's end
    offsets_json = _offsets_json(offsets)
    gpus = gpu_table(run_id, snapshot_id, state) if per_gpu else None

    def op(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "INSERT INTO snapshots (run_id, snapshot_id, tick_end_ns, checksum, offsets, format,"
            " state) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [run_id, snapshot_id, tick_end, checksum, offsets_json, SNAPSHOT_FORMAT, blob],
        )
        if gpus is not None:
            _append(con, "gpu_snapshot", gpus)

    return op


@dataclass(frozen=True, slots=True)
class Snapshot:
    run_id: str
    snapshot_id: int
    tick_end_ns: int
    checksum: str
    offsets: dict[tuple[str, int], int]
    state: TwinState


def latest_snapshot(
    con: duckdb.DuckDBPyConnection, run_id: str, *, at_or_before_ns: int | None = None
) -> Snapshot | None:
    """The newest snapshot of ``run_id`` (optionally the newest at or before an event time)."""
    sql = (
        "SELECT snapshot_id, tick_end_ns, checksum, offsets, format, state FROM snapshots"
        " WHERE run_id = ?"
    )
    params: list[Any] = [run_id]
    if at_or_before_ns is not None:
        sql += " AND tick_end_ns <= ?"
        params.append(at_or_before_ns)
    row = con.execute(sql + " ORDER BY snapshot_id DESC LIMIT 1", params).fetchone()
    if row is None:
        return None
    snapshot_id, tick_end, checksum, offsets_json, fmt, blob = row
    if fmt != SNAPSHOT_FORMAT:
        raise ValueError(f"snapshot format {fmt} is not {SNAPSHOT_FORMAT}: rebuild from the log")
    state = pickle.loads(blob)  # our own file, written by snapshot_op
    offsets = {
        (o["topic"], int(o["partition"])): int(o["offset"]) for o in json.loads(offsets_json)
    }
    return Snapshot(run_id, int(snapshot_id), int(tick_end), checksum, offsets, state)


def rewind_op(run_id: str, after_tick_end_ns: int) -> Op:
    """Delete the tick rows a crashed worker wrote after its newest snapshot, and any later
    snapshot rows, so the replay rewrites them once (no KPI row missing or duplicated)."""

    def op(con: duckdb.DuckDBPyConnection) -> None:
        for table in TICK_TABLES:
            con.execute(
                f"DELETE FROM {table} WHERE run_id = ? AND tick_end_ns > ?",
                [run_id, after_tick_end_ns],
            )
        con.execute(
            "DELETE FROM snapshots WHERE run_id = ? AND tick_end_ns > ?",
            [run_id, after_tick_end_ns],
        )
        con.execute(
            "DELETE FROM gpu_snapshot WHERE run_id = ? AND tick_end_ns > ?",
            [run_id, after_tick_end_ns],
        )

    return op


def reset_run_op(run_id: str) -> Op:
    """Forget every row of ``run_id`` (a fresh run under an old name)."""

    def op(con: duckdb.DuckDBPyConnection) -> None:
        for table in (*TICK_TABLES, "snapshots", "gpu_snapshot", "deadletters", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    return op
