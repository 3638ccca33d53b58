"""Shared fixtures. The Kafka broker for integration tests comes, in order, from:

1. ``TWIN_KAFKA_BOOTSTRAP`` (with the other ``TWIN_*`` SASL/TLS settings): an existing cluster;
2. testcontainers' Kafka in KRaft mode, when a Docker engine answers a ping;
3. the project's embedded local broker (:mod:`streams.broker`) on free ports, with its data in
   a pytest temporary folder, stopped at the end of the session even when tests fail.

Integration tests take ``kafka_bootstrap`` (a bootstrap string) or ``broker_settings`` (the
:class:`~streams.settings.Settings` for that broker) and are marked ``@pytest.mark.integration``.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from streams.broker import start_broker, stop_broker
from streams.settings import Settings

# Image for the testcontainers path (Confluent's Kafka image is what testcontainers' Kafka
# module drives; 7.9 is Apache Kafka 3.9 in KRaft mode).
TESTCONTAINERS_KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def local_broker_settings(data_dir: Path) -> Settings:
    """Settings for a local broker of its own: free ports, data in ``data_dir``, no cluster."""
    port, controller_port = free_ports(2)
    return Settings(
        kafka_bootstrap=None,
        security_protocol="PLAINTEXT",
        data_dir=data_dir,
        broker_port=port,
        broker_controller_port=controller_port,
        broker_heap="384m",
    )


def _docker_engine_answers() -> bool:
    try:
        import docker  # noqa: PLC0415  # optional: only asked when no cluster is configured

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def broker_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at the session's Kafka broker (see the module docstring)."""
    if os.environ.get("TWIN_KAFKA_BOOTSTRAP"):
        yield Settings(data_dir=tmp_path_factory.mktemp("twin-data"))
        return

    if _docker_engine_answers():
        from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415

        container = (
            KafkaContainer(TESTCONTAINERS_KAFKA_IMAGE)
            .with_kraft()
            .with_env("KAFKA_MESSAGE_MAX_BYTES", "16777216")
            .with_env("KAFKA_REPLICA_FETCH_MAX_BYTES", "16777216")
            .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        )
        with container as kafka:
            yield Settings(
                kafka_bootstrap=kafka.get_bootstrap_server(),
                data_dir=tmp_path_factory.mktemp("twin-data"),
            )
        return

    settings = local_broker_settings(tmp_path_factory.mktemp("twin-data"))
    # A SIGTERM (CI cancelling the job) unwinds like Ctrl-C, so the broker below is stopped.
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        start_broker(settings)
        yield settings
    finally:
        stop_broker(settings)
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def kafka_bootstrap(broker_settings: Settings) -> str:
    """Bootstrap servers of the session's Kafka broker."""
    return broker_settings.bootstrap_servers
