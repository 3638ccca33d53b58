"""Scoring the estimator against ground-truth rows (hand-computed)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.unit import twin_support as ts
from tests.unit.twin_support import T0, S
from twin import TwinState, close_tick, fold_events, kpi_rows, score_estimates
from twin.scoring import FRACTIONS


def _truth(rows: list[tuple[int, str, str, list[float], float]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {
        "tick_end_ns": np.array([r[0] for r in rows], np.int64),
        "scope": np.array([r[1] for r in rows], dtype=object),
        "scope_id": np.array([r[2] for r in rows], dtype=object),
        "mfu": np.array([r[4] for r in rows]),
    }
    for k, name in enumerate(FRACTIONS):
        out[name] = np.array([r[3][k] for r in rows])
    return out


def test_score_against_truth_by_hand() -> None:
    state = TwinState()
    fold_events(
        state,
        [
            [ts.rack("r0", [0, 1, 2, 3])],
            ts.telemetry([("r0", 1, T0 + S, [0, 1, 2, 3], [100.0] * 4, [0.0] * 4, [0, 0, 79, 79])]),
        ],
    )
    tick = close_tick(state)  # estimate: unallocated 0.5, down 0.5, MFU 0
    end = T0 + 10 * S
    truth = _truth(
        [
            (end, "facility", "facility", [0.1, 0.0, 0.0, 0.0, 0.4, 0.5], 0.02),
            (end, "hall", "h0", [0.0, 0.0, 0.0, 0.0, 0.5, 0.5], 0.0),
            (end, "job", "nope", [1.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.5),  # no estimate: unmatched
        ]
    )
    score = score_estimates([tick], truth)
    assert score.rows == 2
    assert score.fraction_mae["compute"] == pytest.approx(0.05)
    assert score.fraction_mae["unallocated"] == pytest.approx(0.05)
    assert score.fraction_mae["down"] == pytest.approx(0.0)
    assert score.mfu_mae_pp == pytest.approx(1.0)
    assert score.mfu_bias_pp == pytest.approx(-1.0)
    assert score.by_scope["facility"]["mfu_pp"] == pytest.approx(2.0)
    # the same through the columns form
    assert score_estimates(kpi_rows([tick]), truth) == score
