"""A sink that produces the simulator's records to Kafka with kafka-python.

Telemetry is keyed by rack id, so each rack's messages land on one partition in order; every other
event is keyed by its source's key (see :mod:`sim.records`). Delivery errors are collected from
the futures and raised on :meth:`KafkaSink.flush`, so a run never ends silently short.

Ordering across topics: a ``write`` call carries one simulated interval. When it holds any
low-volume event (scheduler, leases, meters, topology), the sink waits until those are at the
broker before it returns, so the telemetry of a later interval never reaches the broker ahead of
them. Workers rely on it when the simulator runs faster than real time: a tick closes on the
telemetry's event time, and a worker asks the broker how far the low-volume partitions go
before it closes one (:mod:`streams.app`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from kafka import KafkaProducer

from schemas.topics import TOPIC_GPU
from sim.records import Record

__all__ = ["KafkaSink", "ProduceError"]

#: Producer settings tuned for many ~7 KB telemetry messages per second.
DEFAULT_PRODUCER_OPTIONS: Mapping[str, Any] = {
    "linger_ms": 20,
    "batch_size": 1 << 20,
    "max_request_size": 4 << 20,  # job_started / lease_signed with 100k GPU indices (~0.8 MB)
    "acks": 1,
    "enable_idempotence": False,
}


class ProduceError(RuntimeError):
    """Kafka rejected or failed to deliver records."""


class KafkaSink:
    """``write(records)`` sends each record; ``flush()`` waits for delivery and raises errors."""

    def __init__(self, client_kwargs: Mapping[str, Any], **options: Any) -> None:
        config = {**DEFAULT_PRODUCER_OPTIONS, **options}
        self._producer = KafkaProducer(**client_kwargs, client_id="twin-simulate", **config)
        self._errors: list[BaseException] = []
        self.records = 0
        self.bytes = 0

    def _failed(self, exc: BaseException) -> None:
        self._errors.append(exc)

    def write(self, records: list[Record]) -> None:
        send = self._producer.send
        control = False
        for topic, key, value in records:
            send(topic, key=key, value=value).add_errback(self._failed)
            self.bytes += len(value)
            control = control or topic != TOPIC_GPU
        self.records += len(records)
        if control:
            self._producer.flush()  # low-volume events at the broker before later telemetry
        if self._errors:
            self._raise()

    def _raise(self) -> None:
        first = self._errors[0]
        n = len(self._errors)
        raise ProduceError(f"{n} record(s) failed to produce; first error: {first!r}") from first

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)
        if self._errors:
            self._raise()

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> KafkaSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
