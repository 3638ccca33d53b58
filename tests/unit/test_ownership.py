"""Rack ownership under scale-out: the partition of a rack is Kafka's default partitioner's."""

from __future__ import annotations

import numpy as np
import pytest

from streams.ownership import RackOwnership, rack_partition

RACKS = [f"c{c}-h{h}-r{r:04d}" for c in (1, 2) for h in (1, 2, 3) for r in range(40)]


# Apache Kafka's UtilsTest.testMurmur2 (the Java client's partitioner hash)
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


@pytest.mark.parametrize("partitions", [1, 7, 8, 16, 1000])
def test_rack_partition_is_the_java_default_partitioners(partitions: int) -> None:
    for key, signed in JAVA_MURMUR2.items():
        assert rack_partition(key, partitions) == (signed & 0x7FFFFFFF) % partitions


def test_masks_of_disjoint_assignments_partition_the_racks() -> None:
    a = RackOwnership(8, {0, 1, 2, 3}).mask(RACKS)
    b = RackOwnership(8, {4, 5, 6, 7}).mask(RACKS)
    assert a is not None
    assert b is not None
    assert not (a & b).any()
    assert (a | b).all()
    assert 0 < a.sum() < len(RACKS)


def test_owning_every_partition_means_no_mask() -> None:
    assert RackOwnership(8, range(8)).whole
    assert RackOwnership(8, None).mask(RACKS) is None


def test_mask_grows_with_the_topology() -> None:
    own = RackOwnership(4, {1})
    first = own.mask(RACKS[:10])
    full = own.mask(RACKS)
    assert first is not None
    assert full is not None
    assert np.array_equal(full[:10], first)
    assert full.size == len(RACKS)


def test_bad_partition_count() -> None:
    with pytest.raises(ValueError, match="partitions must be > 0"):
        RackOwnership(0)
    with pytest.raises(ValueError, match="partitions must be > 0"):
        rack_partition("r", 0)
