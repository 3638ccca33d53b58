"""Round trips through the session's real Kafka broker (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from streams.settings import Settings
from streams.topics import DEFAULT_PARTITIONS, FACILITY_GPU, ensure_topics

pytestmark = pytest.mark.integration


def _create_topic(settings: Settings, partitions: int) -> str:
    name = f"test.roundtrip.{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**settings.kafka_python_kwargs())
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
        admin.wait_for_topics([name])
    finally:
        admin.close()
    return name


async def _consume_in_group(
    settings: Settings, topic: str, group_id: str, expected: int
) -> tuple[list[tuple[str, bytes]], set[int], dict[int, int]]:
    consumer = AIOKafkaConsumer(
        topic,
        **settings.aiokafka_kwargs(),
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[tuple[str, bytes]] = []
    try:
        while len(received) < expected:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                received.extend((m.key.decode(), m.value) for m in messages)
        assigned = {tp.partition for tp in consumer.assignment()}
        await consumer.commit()
        committed = {}
        for tp in consumer.assignment():
            offset = await consumer.committed(tp)
            committed[tp.partition] = offset if offset is not None else 0
    finally:
        await consumer.stop()
    return received, assigned, committed


def test_kafka_python_producer_to_aiokafka_consumer_group(broker_settings: Settings) -> None:
    topic = _create_topic(broker_settings, partitions=3)
    sent = [(f"rack-{i % 5}", f'{{"seq": {i}}}'.encode()) for i in range(60)]
    producer = KafkaProducer(**broker_settings.kafka_python_kwargs(), acks="all")
    try:
        for key, value in sent:
            producer.send(topic, key=key.encode(), value=value)
        producer.flush()
    finally:
        producer.close()

    group_id = f"test-group-{uuid.uuid4().hex[:8]}"
    received, assigned, committed = asyncio.run(
        asyncio.wait_for(_consume_in_group(broker_settings, topic, group_id, len(sent)), 120)
    )
    assert sorted(received) == sorted(sent)
    assert assigned == {0, 1, 2}  # the only member of the group owns every partition
    assert sum(committed.values()) == len(sent)  # the group's committed offsets cover it all

    # Same key, same partition: messages of one rack arrive in the order they were sent.
    per_key: dict[str, list[bytes]] = {}
    for key, value in received:
        per_key.setdefault(key, []).append(value)
    for key, values in per_key.items():
        assert values == [v for k, v in sent if k == key]


def test_ensure_topics_creates_the_catalogue_idempotently(broker_settings: Settings) -> None:
    first = ensure_topics(broker_settings)
    assert first == dict(DEFAULT_PARTITIONS)
    # Again, with an override for a topic that exists: nothing is re-created or resized.
    second = ensure_topics(broker_settings, {FACILITY_GPU: 16})
    assert second == first


def test_a_one_megabyte_message_fits(broker_settings: Settings) -> None:
    topic = _create_topic(broker_settings, partitions=1)
    value = b"x" * (1024 * 1024 + 1)
    producer = KafkaProducer(
        **broker_settings.kafka_python_kwargs(), acks="all", max_request_size=4 * 1024 * 1024
    )
    try:
        metadata = producer.send(topic, value=value).get(timeout=60)
    finally:
        producer.close()
    assert metadata.offset == 0
