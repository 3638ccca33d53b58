"""``twin demo``: the end-to-end demonstration on the embedded defaults.

For now: start the local broker (unless a cluster is configured or it already runs), create the
topics, send a few real events with kafka-python, read them back with an aiokafka consumer in a
consumer group, print them, and stop the broker again. Later issues grow this into the main job.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError as AIOKafkaError
from kafka import KafkaProducer
from kafka.errors import KafkaError

from schemas import TOPIC_EVENT_TYPES, EventError, decode
from streams import broker
from streams.cli.main import CliError
from streams.cli.options import add_kafka_flags, add_setting_flags, settings_from_args
from streams.settings import Settings
from streams.topics import FACILITY_NETWORK, FACILITY_POWER, TopicError, ensure_topics

__all__ = ["DemoRecord", "demo_events", "register", "run_demo"]

_READ_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class DemoRecord:
    topic: str
    partition: int
    offset: int
    key: str
    event: dict[str, Any]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="smoke test: a few events through Kafka and back (make demo runs `twin run`)",
        description=(
            "Start the local Kafka broker if needed, create the topics, send a few events, read "
            "them back through a consumer group, print them, and stop the broker it started."
        ),
    )
    add_kafka_flags(parser)
    group = parser.add_argument_group("local broker")
    add_setting_flags(
        group,
        "data_dir",
        "broker_port",
        "broker_controller_port",
        "broker_heap",
        "broker_start_timeout_s",
    )
    parser.set_defaults(func=_run)


def demo_events(source_id: str, ts_ns: int) -> list[tuple[str, str, dict[str, Any]]]:
    """A few valid events (docs/EVENTS.md) as (topic, key, event) from one source."""
    links = [
        ("memphis-a", "memphis-b", 45.0, 3200.0),
        ("memphis-a", "southaven", 310.0, 800.0),
        ("memphis-b", "southaven", 290.0, 800.0),
    ]
    events: list[tuple[str, str, dict[str, Any]]] = []
    for seq, (campus_a, campus_b, latency_us, bandwidth_gbps) in enumerate(links):
        link_id = f"{campus_a}--{campus_b}"
        events.append((FACILITY_NETWORK, link_id, {
            "event_type": "link_state", "schema_version": 1, "ts_ns": ts_ns,
            "source_id": source_id, "seq": seq, "link_id": link_id,
            "campus_a": campus_a, "campus_b": campus_b, "latency_us": latency_us,
            "bandwidth_gbps": bandwidth_gbps, "loss_fraction": 0.0,
        }))  # fmt: skip
    events.append((FACILITY_POWER, "facility-meter", {
        "event_type": "energy_price", "schema_version": 1, "ts_ns": ts_ns,
        "source_id": source_id, "seq": len(links), "usd_per_mwh": 62.5,
    }))  # fmt: skip
    return events


def run_demo(settings: Settings, bootstrap: str) -> list[DemoRecord]:
    """Create the topics, send the demo events, read them back (validated by the event
    contracts in :mod:`schemas`); returns what was read."""
    ensure_topics(settings, bootstrap=bootstrap)
    run_id = uuid.uuid4().hex[:12]
    source_id = f"twin-demo-{run_id}"
    events = demo_events(source_id, time.time_ns())

    producer = KafkaProducer(
        **settings.kafka_python_kwargs(bootstrap),
        client_id="twin-demo",
        acks="all",
    )
    try:
        futures = [
            producer.send(topic, key=key.encode(), value=orjson.dumps(event))
            for topic, key, event in events
        ]
        producer.flush()
        for future in futures:
            future.get(timeout=_READ_TIMEOUT_S)
    finally:
        producer.close()

    topics = sorted({topic for topic, _, _ in events})
    return asyncio.run(
        _read_back(
            settings, bootstrap, topics,
            source_id=source_id, expected=len(events), group_id="twin-demo",
        )
    )  # fmt: skip


async def _read_back(
    settings: Settings,
    bootstrap: str,
    topics: list[str],
    *,
    source_id: str,
    expected: int,
    group_id: str,
) -> list[DemoRecord]:
    consumer = AIOKafkaConsumer(
        *topics,
        **settings.aiokafka_kwargs(bootstrap),
        group_id=group_id,
        client_id="twin-demo",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[DemoRecord] = []
    try:
        deadline = time.monotonic() + _READ_TIMEOUT_S
        while len(records) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for msg in messages:
                    # Validate at the edge with the event contracts, as the worker does.
                    event = decode(msg.value, TOPIC_EVENT_TYPES.get(msg.topic, ())).model_dump()
                    if event["source_id"] != source_id:
                        continue  # an earlier demo run's event: the broker keeps its data
                    key = msg.key.decode() if msg.key is not None else ""
                    records.append(DemoRecord(msg.topic, msg.partition, msg.offset, key, event))
        await consumer.commit()
    finally:
        await consumer.stop()
    if len(records) < expected:
        raise TimeoutError(
            f"read back only {len(records)} of {expected} events in {_READ_TIMEOUT_S:g} s"
        )
    return sorted(records, key=lambda r: r.event["seq"])


def _print(records: list[DemoRecord], bootstrap: str) -> None:
    print(f"read back from {bootstrap} by an aiokafka consumer group:")
    envelope = {"event_type", "schema_version", "ts_ns", "source_id", "seq"}
    for r in records:
        fields = " ".join(f"{k}={v}" for k, v in r.event.items() if k not in envelope)
        where = f"{r.topic}[{r.partition}]@{r.offset}"
        print(f"  {where:<24} key={r.key:<22} {r.event['event_type']:<13} {fields}")


def _run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    was_running = settings.uses_local_broker and broker.broker_status(settings).running
    try:
        with broker.local_broker(settings) as bootstrap:
            where = "local broker" if settings.uses_local_broker else "configured cluster"
            print(f"Kafka: {where} at {bootstrap}", flush=True)
            records = run_demo(settings, bootstrap)
            _print(records, bootstrap)
    except (
        broker.BrokerError,
        TopicError,
        KafkaError,
        AIOKafkaError,
        EventError,
        TimeoutError,
    ) as exc:
        raise CliError(f"{type(exc).__name__}: {exc}") from None
    if was_running:
        print("the local broker was already running: left running")
    elif settings.uses_local_broker:
        print("local broker stopped")
    return 0
