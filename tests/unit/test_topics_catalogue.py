"""The topic catalogue: names and partition counts from docs/EVENTS.md, overridable."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from schemas import TOPIC_EVENT_TYPES, decode
from schemas import topics as contract
from streams import topics
from streams.cli.demo_cmd import demo_events

REPO = Path(__file__).resolve().parents[2]


def test_catalogue_partition_counts() -> None:
    assert topics.topic_partitions() == {
        "facility.gpu": 8,
        "facility.power": 4,
        "facility.cooling": 4,
        "facility.jobs": 4,
        "facility.leases": 1,
        "facility.topology": 4,
        "facility.network": 1,
        "twin.kpis": 4,
        "twin.deadletter": 1,
        "twin.partials": 1,
    }


def test_catalogue_matches_the_event_contract_doc() -> None:
    doc = (REPO / "docs" / "EVENTS.md").read_text()
    documented = set(re.findall(r"^\| `((?:facility|twin)\.[a-z]+)` \|", doc, flags=re.MULTILINE))
    assert documented == set(topics.ALL_TOPICS)


def test_overrides_change_only_the_named_topic() -> None:
    counts = topics.topic_partitions({topics.FACILITY_GPU: 16})
    assert counts[topics.FACILITY_GPU] == 16
    assert counts[topics.FACILITY_POWER] == topics.DEFAULT_PARTITIONS[topics.FACILITY_POWER]
    assert topics.DEFAULT_PARTITIONS[topics.FACILITY_GPU] == 8  # the defaults stay as they are


def test_unknown_topic_or_bad_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown topic"):
        topics.topic_partitions({"facility.gpus": 8})
    with pytest.raises(ValueError, match=">= 1"):
        topics.topic_partitions({topics.FACILITY_GPU: 0})


def test_catalogue_agrees_with_the_event_contracts() -> None:
    assert set(topics.ALL_TOPICS) == {
        *contract.INPUT_TOPICS,
        contract.KPI_TOPIC,
        contract.DEADLETTER_TOPIC,
        contract.PARTIALS_TOPIC,
    }


def test_demo_events_are_valid_events_on_their_topics() -> None:
    for topic, _key, event in demo_events("twin-demo-test", 1_700_000_000_000_000_000):
        decoded = decode(orjson.dumps(event), TOPIC_EVENT_TYPES[topic])
        assert decoded.event_type == event["event_type"]


def test_group_placement_follows_kafka() -> None:
    # Java: "hello".hashCode() == 99162322; Kafka places a group at abs(hash) % partitions.
    assert topics._java_string_hash("hello") == 99162322
    assert topics._java_string_hash("") == 0
    assert topics._offsets_partition("hello", 50) == 99162322 % 50
    assert -(2**31) <= topics._java_string_hash("x" * 1000) < 2**31


def test_readiness_probes_cover_every_offsets_partition() -> None:
    probes = topics._probe_groups(50)
    assert sorted(topics._offsets_partition(g, 50) for g in probes) == list(range(50))
