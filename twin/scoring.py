"""Scoring the time-fraction estimator against the simulator's ground truth.

Truth comes as columns (``tick_end_ns``, ``scope``, ``scope_id``, the six fractions, ``mfu``),
e.g. ``sim.truth.TruthTable.columns``; estimates as :class:`twin.results.TickResult`\\ s or the
same columns (:func:`kpi_rows`). Rows are matched on (tick end, scope, scope id); both sides must
use the same tick grid (ticks are aligned to multiples of the tick length on both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from twin.results import KPI_COLUMNS, TickResult

__all__ = ["FRACTIONS", "EstimatorScore", "kpi_rows", "score_estimates"]

F64 = npt.NDArray[np.float64]
Columns = Mapping[str, npt.NDArray[Any]]

FRACTIONS: Final[tuple[str, ...]] = (
    "compute",
    "straggler_wait",
    "comm_stall",
    "allocated_idle",
    "unallocated",
    "down",
)


def kpi_rows(results: Sequence[TickResult]) -> dict[str, npt.NDArray[Any]]:
    """All scope rows of ``results`` as columns: tick_end_ns, scope, scope_id, *KPI_COLUMNS."""
    ends: list[npt.NDArray[np.int64]] = []
    scopes: list[npt.NDArray[Any]] = []
    ids: list[npt.NDArray[Any]] = []
    values: list[F64] = []
    for result in results:
        for name, table in result.scopes.items():
            n = len(table.ids)
            ends.append(np.full(n, result.end_ns, np.int64))
            scopes.append(np.full(n, name, dtype=object))
            ids.append(np.array(table.ids, dtype=object))
            values.append(table.columns)
    out: dict[str, npt.NDArray[Any]] = {
        "tick_end_ns": np.concatenate(ends) if ends else np.zeros(0, np.int64),
        "scope": np.concatenate(scopes) if scopes else np.zeros(0, object),
        "scope_id": np.concatenate(ids) if ids else np.zeros(0, object),
    }
    stacked = np.concatenate(values, axis=1) if values else np.zeros((len(KPI_COLUMNS), 0))
    for k, name in enumerate(KPI_COLUMNS):
        out[name] = stacked[k]
    return out


@dataclass(frozen=True, slots=True)
class EstimatorScore:
    """Mean absolute errors over matched rows: fractions in fraction units (0.01 = 1 point),
    MFU in percentage points; ``by_scope`` repeats them per scope kind."""

    rows: int
    fraction_mae: Mapping[str, float]
    mfu_mae_pp: float
    mfu_bias_pp: float  # mean (estimate - truth)
    by_scope: Mapping[str, Mapping[str, float]]


def _keys(cols: Columns) -> npt.NDArray[Any]:
    ends = np.asarray(cols["tick_end_ns"]).astype(np.int64).astype(str).astype(object)
    scope = np.asarray(cols["scope"]).astype(str).astype(object)
    ident = np.asarray(cols["scope_id"]).astype(str).astype(object)
    return np.asarray(ends + "|" + scope + "|" + ident, dtype=str)


def score_estimates(est: Sequence[TickResult] | Columns, truth: Columns) -> EstimatorScore:
    """Per-fraction MAE and MFU error (pp) of the estimates against the truth rows."""
    if isinstance(est, Mapping):
        cols: Columns = est
    else:
        cols = kpi_rows(list(est))
    _, ie, it = np.intersect1d(_keys(cols), _keys(truth), return_indices=True)
    scope = np.asarray(truth["scope"]).astype(str)[it]

    def errors(mask: npt.NDArray[np.bool_]) -> dict[str, float]:
        out: dict[str, float] = {}
        for name in FRACTIONS:
            d = np.asarray(cols[name], np.float64)[ie][mask] - np.asarray(truth[name])[it][mask]
            out[name] = float(np.nanmean(np.abs(d))) if d.size else float("nan")
        d = np.asarray(cols["mfu"], np.float64)[ie][mask] - np.asarray(truth["mfu"])[it][mask]
        out["mfu_pp"] = float(np.nanmean(np.abs(d)) * 100) if d.size else float("nan")
        out["mfu_bias_pp"] = float(np.nanmean(d) * 100) if d.size else float("nan")
        out["rows"] = float(np.count_nonzero(mask))
        return out

    everything = errors(np.ones(ie.size, np.bool_))
    by_scope = {s: errors(scope == s) for s in sorted(set(scope.tolist()))}
    return EstimatorScore(
        rows=int(ie.size),
        fraction_mae={name: everything[name] for name in FRACTIONS},
        mfu_mae_pp=everything["mfu_pp"],
        mfu_bias_pp=everything["mfu_bias_pp"],
        by_scope=by_scope,
    )
