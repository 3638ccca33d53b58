"""Which racks a worker owns when several workers share the telemetry partitions.

``facility.gpu`` is keyed by rack id (docs/EVENTS.md), and producers partition keyed records
the way Kafka's Java client, kafka-python and aiokafka do by default: ``murmur2(key) & 0x7fffffff
% partitions``. So the racks a worker owns follow from the telemetry partitions Kafka assigned
it; a worker computes them from the rack ids in its state (every worker folds the whole
topology), without waiting to see a rack's telemetry. A producer with another partitioner
(librdkafka's default ``consistent_random``, Sarama's FNV-1a) breaks this contract: set it to
murmur2 (librdkafka: ``partitioner=murmur2_random``) before scaling out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt
from kafka.partitioner.default import murmur2

__all__ = ["RackOwnership", "rack_partition"]


def rack_partition(rack_id: str, partitions: int) -> int:
    """The ``facility.gpu`` partition of a rack's telemetry (Kafka's default partitioner)."""
    if partitions <= 0:
        raise ValueError(f"partitions must be > 0, not {partitions}")
    return int(murmur2(rack_id.encode()) & 0x7FFFFFFF) % partitions


class RackOwnership:
    """The racks whose telemetry partitions a worker holds, as a mask over the state's racks.

    ``owned`` None (or every partition): the worker owns the whole facility. The mask is
    recomputed only for racks added since the last call (racks are never removed)."""

    def __init__(self, partitions: int, owned: Collection[int] | None = None) -> None:
        if partitions <= 0:
            raise ValueError(f"partitions must be > 0, not {partitions}")
        self.partitions = int(partitions)
        owned_set = None if owned is None else {int(p) for p in owned}
        if owned_set is not None and owned_set >= set(range(self.partitions)):
            owned_set = None
        self.owned: frozenset[int] | None = None if owned_set is None else frozenset(owned_set)
        self._rack_partition = np.zeros(0, np.int32)

    @property
    def whole(self) -> bool:
        """True when this worker owns every partition (no mask needed)."""
        return self.owned is None

    def rack_partitions(self, rack_ids: Sequence[str]) -> npt.NDArray[np.int32]:
        """The partition of each rack, cached and extended as racks are added."""
        have = self._rack_partition.size
        if len(rack_ids) > have:
            extra = np.fromiter(
                (rack_partition(r, self.partitions) for r in rack_ids[have:]),
                np.int32,
                len(rack_ids) - have,
            )
            self._rack_partition = np.concatenate([self._rack_partition, extra])
        return self._rack_partition[: len(rack_ids)]

    def mask(self, rack_ids: Sequence[str]) -> npt.NDArray[np.bool_] | None:
        """Owned racks (None: all of them)."""
        if self.owned is None:
            return None
        parts = self.rack_partitions(rack_ids)
        return np.isin(parts, np.fromiter(self.owned, np.int32, len(self.owned)))
