"""Communication cost of synchronous data-parallel training (FACTS.md section 4).

Ring all-reduce by the alpha-beta model (Thakur et al. 2005)::

    t = 2 (n - 1) alpha + 2 (n - 1) / n * S / B

n ranks, S bytes per rank, B bytes/s per rank, alpha seconds per hop. A job spanning campuses runs
it hierarchically: a ring inside each campus over its data-parallel ranks, then a ring across the
campuses that carries one full gradient copy per campus over the inter-campus links (the slow hop
is paid once per level). Part of the all-reduce hides behind backward compute; the rest is exposed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CommPlan",
    "exposed_comm_s",
    "hierarchical_allreduce_s",
    "link_goodput",
    "ring_allreduce_s",
]


def ring_allreduce_s(n: int, nbytes: float, bandwidth_bytes_s: float, alpha_s: float) -> float:
    """Seconds for a ring all-reduce of ``nbytes`` per rank over ``n`` ranks (0 when n <= 1)."""
    if n <= 1 or nbytes <= 0:
        return 0.0
    return 2.0 * (n - 1) * alpha_s + 2.0 * (n - 1) / n * nbytes / bandwidth_bytes_s


def link_goodput(loss_fraction: float, loss_penalty: float, floor: float) -> float:
    """Useful fraction of a lossy link's bandwidth: ``max(floor, 1 - penalty * loss)``."""
    return max(floor, 1.0 - loss_penalty * loss_fraction)


@dataclass(frozen=True, slots=True)
class CommPlan:
    """What the all-reduce of one job costs per step, split by level."""

    intra_s: float  # slowest campus's ring
    inter_s: float  # ring across campuses (0 inside one campus)

    @property
    def total_s(self) -> float:
        return self.intra_s + self.inter_s


def hierarchical_allreduce_s(
    *,
    dp_ranks_per_campus: Mapping[str, int],
    shard_bytes: float,
    replica_bytes: float,
    nic_bytes_s: float,
    intra_alpha_s: float,
    inter_bytes_s: float,
    inter_alpha_s: float,
) -> CommPlan:
    """All-reduce cost of a data-parallel job laid over one or more campuses.

    ``shard_bytes``: gradient bytes each GPU holds (parameters / (tensor x pipeline) x bytes per
    gradient). ``replica_bytes``: one full gradient copy, what crosses between campuses.
    ``inter_bytes_s``: the bandwidth this job gets on the inter-campus links.
    """
    intra = max(
        (
            ring_allreduce_s(n, shard_bytes, nic_bytes_s, intra_alpha_s)
            for n in dp_ranks_per_campus.values()
        ),
        default=0.0,
    )
    k = len(dp_ranks_per_campus)
    inter = ring_allreduce_s(k, replica_bytes, inter_bytes_s, inter_alpha_s) if k > 1 else 0.0
    return CommPlan(intra_s=intra, inter_s=inter)


def exposed_comm_s(comm_s: float, overlap: float, compute_s: float) -> float:
    """Exposed part of ``comm_s``: ``overlap`` of it hides behind compute, never more than it."""
    return comm_s - min(overlap * comm_s, compute_s)


def dp_ranks(gpus_per_campus: Sequence[int], model_parallel: int) -> list[int]:
    """Data-parallel ranks in each campus: whole model replicas (at least one)."""
    return [max(1, g // model_parallel) for g in gpus_per_campus]
