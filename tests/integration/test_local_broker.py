"""The embedded local broker's lifecycle, each test with a broker of its own.

These run a second JVM next to the session's broker, in their own temporary data dirs on their
own free ports, so stopping and restarting them never disturbs other tests.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from streams import broker
from streams.cli.main import main
from streams.settings import Settings
from tests.conftest import local_broker_settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("java") is None, reason="the local broker needs a JDK"),
]


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process (zombies awaiting their parent count as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _jvms_using(path: Path) -> list[int]:
    """Pids of live processes whose command line mentions ``path``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline and _pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Settings]:
    """Settings for a broker of this test's own; whatever it left running is stopped."""
    settings = local_broker_settings(tmp_path / "data")
    try:
        yield settings
    finally:
        broker.stop_broker(settings)


def test_start_twice_reports_the_running_broker(
    own_broker: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    first = broker.start_broker(own_broker)
    assert not first.already_running
    assert first.status.running
    assert first.status.pid is not None

    second = broker.start_broker(own_broker)
    assert second.already_running
    assert second.status.pid == first.status.pid
    assert second.status.bootstrap == own_broker.local_bootstrap

    argv = ["--data-dir", str(own_broker.data_dir)]
    assert main(["broker", "start", *argv]) == 0
    assert f"broker already running: pid {first.status.pid}" in capsys.readouterr().out
    assert main(["broker", "status", *argv]) == 0
    out = capsys.readouterr().out
    assert str(first.status.pid) in out
    assert own_broker.local_bootstrap in out
    assert _jvms_using(own_broker.broker_dir.resolve()) == [first.status.pid]


def test_stop_leaves_no_jvm(own_broker: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    pid = broker.start_broker(own_broker).status.pid
    assert pid is not None
    assert _pid_alive(pid)

    assert broker.stop_broker(own_broker) == pid
    assert not _pid_alive(pid)
    assert _jvms_using(own_broker.broker_dir.resolve()) == []
    assert not (own_broker.broker_dir / "broker.pid").exists()
    assert not broker.broker_status(own_broker).running
    assert broker.stop_broker(own_broker) is None  # stopping again is harmless

    argv = ["--data-dir", str(own_broker.data_dir)]
    assert main(["broker", "status", *argv]) == 3
    assert "running:" in capsys.readouterr().out


def test_cli_start_and_stop(own_broker: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "--data-dir", str(own_broker.data_dir),
        "--broker-port", str(own_broker.broker_port),
        "--broker-controller-port", str(own_broker.broker_controller_port),
    ]  # fmt: skip
    assert main(["broker", "start", *argv]) == 0
    out = capsys.readouterr().out
    assert out.startswith("broker started: pid ")
    pid = int(out.split("pid ", 1)[1].split(",", 1)[0])
    assert _pid_alive(pid)
    assert main(["broker", "stop", "--data-dir", str(own_broker.data_dir)]) == 0
    assert f"broker stopped: pid {pid}" in capsys.readouterr().out
    assert not _pid_alive(pid)


def test_a_message_survives_stop_and_start(own_broker: Settings) -> None:
    first = broker.start_broker(own_broker)
    topic = "test.durable"
    admin = KafkaAdminClient(**own_broker.kafka_python_kwargs())
    try:
        admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
        admin.wait_for_topics([topic])
    finally:
        admin.close()
    value = f"kept-{uuid.uuid4().hex}".encode()
    producer = KafkaProducer(**own_broker.kafka_python_kwargs(), acks="all")
    try:
        producer.send(topic, key=b"rack-7", value=value).get(timeout=60)
    finally:
        producer.close()
    meta_before = (own_broker.broker_dir / "data" / "meta.properties").read_text()

    assert broker.stop_broker(own_broker) == first.status.pid
    assert not _pid_alive(first.status.pid or -1)
    again = broker.start_broker(own_broker)
    assert not again.already_running
    assert again.status.pid != first.status.pid
    # Storage was formatted once: same cluster, same directory id.
    assert (own_broker.broker_dir / "data" / "meta.properties").read_text() == meta_before

    async def read_all() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            topic,
            **own_broker.aiokafka_kwargs(),
            group_id="test-durable",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000)
                values = [m.value for msgs in batches.values() for m in msgs]
                if values:
                    return values
        finally:
            await consumer.stop()

    assert asyncio.run(asyncio.wait_for(read_all(), 120)) == [value]


def test_port_taken_by_another_process_is_a_clear_error(
    own_broker: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", own_broker.broker_port))
        squatter.listen()
        with pytest.raises(broker.PortInUseError, match=f"port {own_broker.broker_port} .* in use"):
            broker.start_broker(own_broker)

        argv = [
            "--data-dir", str(own_broker.data_dir),
            "--broker-port", str(own_broker.broker_port),
            "--broker-controller-port", str(own_broker.broker_controller_port),
        ]  # fmt: skip
        assert main(["broker", "start", *argv]) == 2
        err = capsys.readouterr().err
        assert "already in use by another process" in err
        assert "TWIN_BROKER_PORT" in err
        assert "Traceback" not in err
    assert _jvms_using(own_broker.broker_dir.resolve()) == []
    assert not (own_broker.broker_dir / "broker.pid").exists()


def test_a_broker_that_cannot_start_is_reported_with_its_log(tmp_path: Path) -> None:
    settings = local_broker_settings(tmp_path / "data").model_copy(
        update={"broker_heap": "1k"}  # below the JVM's minimum heap: it exits at once
    )
    with pytest.raises(broker.BrokerError, match="exited with code") as failed:
        broker.start_broker(settings)
    assert "heap" in str(failed.value).lower()  # the JVM's own complaint, from its log
    assert _jvms_using(settings.broker_dir.resolve()) == []
    assert not (settings.broker_dir / "broker.pid").exists()
    assert os.path.isdir(settings.broker_dir / "logs")


def test_a_cluster_id_that_looks_like_an_option_still_formats(own_broker: Settings) -> None:
    own_broker.broker_dir.mkdir(parents=True)
    (own_broker.broker_dir / "cluster.id").write_text("-Ab3dE5fG7hI9jK1lM3nOg\n")
    pid = broker.start_broker(own_broker).status.pid
    assert pid is not None
    meta = (own_broker.broker_dir / "data" / "meta.properties").read_text()
    assert "cluster.id=-Ab3dE5fG7hI9jK1lM3nOg" in meta


def test_local_broker_context_stops_what_it_started_even_on_error(own_broker: Settings) -> None:
    seen: list[int | None] = []

    def fail_inside() -> None:
        with broker.local_broker(own_broker) as bootstrap:
            assert bootstrap == own_broker.local_bootstrap
            seen.append(broker.broker_status(own_broker).pid)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_inside()
    (pid,) = seen
    assert pid is not None
    assert not _pid_alive(pid)
    assert not broker.broker_status(own_broker).running


def test_local_broker_context_leaves_a_running_broker_running(own_broker: Settings) -> None:
    bootstrap = broker.ensure_broker(own_broker)  # starts it, and it keeps running
    pid = broker.broker_status(own_broker).pid
    assert bootstrap == own_broker.local_bootstrap
    with broker.local_broker(own_broker) as inner:
        assert inner == bootstrap
    assert broker.broker_status(own_broker).pid == pid
    assert pid is not None
    assert _pid_alive(pid)
