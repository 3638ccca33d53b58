"""GPU failures (Poisson in GPU-time) and repairs, drawn for all GPUs at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim.config import FailureConfig

__all__ = ["FailureModel"]

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class FailureModel:
    rate_per_gpu_s: float
    repair_min_s: float
    repair_extra_mean_s: float
    xid_codes: npt.NDArray[np.int32]
    xid_p: npt.NDArray[np.float64]

    @classmethod
    def build(cls, cfg: FailureConfig) -> FailureModel:
        codes = np.array([int(k) for k in cfg.xid_weights] or [79], dtype=np.int32)
        weights = np.array(list(cfg.xid_weights.values()) or [1.0], dtype=np.float64)
        return cls(
            rate_per_gpu_s=cfg.gpu_failures_per_gpu_hour / 3600.0,
            repair_min_s=cfg.repair_hours_min * 3600.0,
            repair_extra_mean_s=max(0.0, cfg.repair_hours_mean - cfg.repair_hours_min) * 3600.0,
            xid_codes=codes,
            xid_p=weights / weights.sum(),
        )

    def draw(
        self, rng: np.random.Generator, up: B, dt: float
    ) -> tuple[I64, npt.NDArray[np.int32], npt.NDArray[np.float64]]:
        """GPUs failing in an interval of ``dt`` seconds, their XID codes and repair times (s)."""
        n_up = int(np.count_nonzero(up)) if self.rate_per_gpu_s > 0 else 0
        k = int(rng.poisson(self.rate_per_gpu_s * n_up * dt)) if n_up else 0
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0)
        candidates = np.flatnonzero(up)
        gpus = np.sort(rng.choice(candidates, size=min(k, n_up), replace=False)).astype(np.int64)
        xid = np.asarray(
            rng.choice(self.xid_codes, size=gpus.shape[0], p=self.xid_p), dtype=np.int32
        )
        extra = rng.exponential(self.repair_extra_mean_s or 1e-9, gpus.shape[0])
        repair = np.asarray(self.repair_min_s + extra, dtype=np.float64)
        return gpus, xid, repair
