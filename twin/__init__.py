"""The twin's pure core: columnar state, event-sourced reducers and numpy kernels.

Never imports faust, kafka, aiokafka or duckdb, and never touches the filesystem.
"""

from __future__ import annotations

from twin.checksum import state_checksum
from twin.kernels import merge_partials
from twin.reducers import apply
from twin.results import (
    KPI_COLUMNS,
    QUANTITIES,
    SCOPES,
    Ledger,
    PartialTick,
    ScopeTable,
    Stragglers,
    TickResult,
)
from twin.scoring import EstimatorScore, kpi_rows, score_estimates
from twin.state import TwinState
from twin.ticks import close_tick, fold_events

__all__ = [
    "KPI_COLUMNS",
    "QUANTITIES",
    "SCOPES",
    "EstimatorScore",
    "Ledger",
    "PartialTick",
    "ScopeTable",
    "Stragglers",
    "TickResult",
    "TwinState",
    "apply",
    "close_tick",
    "fold_events",
    "kpi_rows",
    "merge_partials",
    "score_estimates",
    "state_checksum",
]
