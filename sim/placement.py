"""Which GPUs a lease or a job gets: by model, campus and tenant, in rack order.

``pack`` takes the first eligible GPUs in index order (whole racks, one hall after the other);
``spread`` takes from every allowed model in proportion to what is eligible of each, which is how
the original use spread large jobs over all generations (and so over campuses).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sim.config import JobConfig, LeaseConfig
from sim.topology import Topology
from twin.gpus import MODEL_NAMES

__all__ = ["PlacementError", "eligible_mask", "lease_gpus", "place_job"]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


class PlacementError(ValueError):
    """Not enough eligible GPUs for a lease or job; the message says what was asked and found."""


def _model_mask(topo: Topology, models: tuple[str, ...] | list[str]) -> B:
    if not models:
        return np.ones(topo.n_gpus, dtype=bool)
    codes = [MODEL_NAMES.index(m) for m in models]
    mask: B = np.isin(topo.gpu_model, codes)
    return mask


def _campus_mask(topo: Topology, campus: str) -> B:
    if not campus:
        return np.ones(topo.n_gpus, dtype=bool)
    mask: B = topo.gpu_campus == topo.campus_ids.index(campus)
    return mask


def lease_gpus(topo: Topology, lease: LeaseConfig, taken: B) -> I64:
    """The GPUs a lease covers: per model, the first ones not already leased."""
    parts: list[I64] = []
    base = ~taken & _campus_mask(topo, lease.campus)
    for model, count in lease.gpus.items():
        pool = np.flatnonzero(base & (topo.gpu_model == MODEL_NAMES.index(model)))
        if pool.shape[0] < count:
            where = f" on campus {lease.campus}" if lease.campus else ""
            raise PlacementError(
                f"lease {lease.id}: wants {count} {model} GPUs{where} but only "
                f"{pool.shape[0]} are not leased already"
            )
        parts.append(pool[:count])
    return np.sort(np.concatenate(parts)).astype(np.int64)


def eligible_mask(
    topo: Topology,
    cfg: JobConfig,
    free: B,
    *,
    lease_tenant: I32,
    tenant_code: int,
    tenant_has_lease: bool,
) -> B:
    """Free GPUs this job may use: its models and campus, and its tenant's lease (or no lease)."""
    mask = free & _model_mask(topo, cfg.models) & _campus_mask(topo, cfg.campus)
    if tenant_has_lease:
        mask &= lease_tenant == tenant_code
    else:
        mask &= lease_tenant < 0
    return mask


def place_job(topo: Topology, cfg: JobConfig, job_id: str, eligible: B) -> I64:
    """Pick ``cfg.gpus`` GPUs out of ``eligible`` by ``cfg.placement``."""
    pool = np.flatnonzero(eligible)
    want = cfg.gpus
    if pool.shape[0] < want:
        raise PlacementError(
            f"job {job_id}: wants {want} GPUs (models {list(cfg.models) or 'any'}, campus "
            f"{cfg.campus or 'any'}) but only {pool.shape[0]} eligible GPUs are free"
        )
    if cfg.placement == "pack":
        return pool[:want].astype(np.int64)
    models = topo.gpu_model[pool]
    codes, counts = np.unique(models, return_counts=True)
    take = np.floor(counts * (want / pool.shape[0])).astype(np.int64)
    short = want - int(take.sum())
    order = np.argsort(-(counts * (want / pool.shape[0]) - take), kind="stable")
    take[order[:short]] += 1
    parts = [
        pool[models == code][:k] for code, k in zip(codes.tolist(), take.tolist(), strict=True)
    ]
    return np.sort(np.concatenate(parts)).astype(np.int64)
