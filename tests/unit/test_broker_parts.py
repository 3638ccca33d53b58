"""Parts of the local broker that need no JVM: config rendering, identity checks, ports."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

from streams import broker
from streams.settings import Settings


def _settings(tmp_path: Path, port: int = 19092, controller_port: int = 19093) -> Settings:
    return Settings(
        kafka_bootstrap=None,
        data_dir=tmp_path,
        broker_port=port,
        broker_controller_port=controller_port,
    )


def test_rendered_config_is_one_kraft_node_on_localhost(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    paths = broker._paths(settings)
    paths.root.mkdir(parents=True)
    broker._render_config(settings, paths, broker.INFRA_DIR)
    props = dict(
        line.split("=", 1)
        for line in paths.config.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["log.dirs"] == str(paths.data)
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
        "min.insync.replicas",
    ):
        assert props[key] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert int(props["message.max.bytes"]) >= 16 * 1024 * 1024
    assert int(props["replica.fetch.max.bytes"]) >= int(props["message.max.bytes"])
    assert broker._configured_ports(paths) == (19092, 19093)


def test_cluster_id_is_made_once_and_kept(tmp_path: Path) -> None:
    paths = broker._paths(_settings(tmp_path))
    paths.root.mkdir(parents=True)
    first = broker._cluster_id(paths)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", first)
    assert broker._cluster_id(paths) == first


def test_new_cluster_ids_never_look_like_options() -> None:
    # One random id in 64 would start with "-"; a thousand make that case all but certain.
    ids = {broker._new_cluster_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert not any(i.startswith("-") for i in ids)


def test_cluster_id_is_recovered_from_formatted_storage(tmp_path: Path) -> None:
    paths = broker._paths(_settings(tmp_path))
    paths.data.mkdir(parents=True)
    paths.meta.write_text("node.id=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nversion=1\n")
    assert broker._cluster_id(paths) == "AAAAAAAAAAAAAAAAAAAAAA"


def test_a_pid_that_is_not_our_broker_is_never_ours(tmp_path: Path) -> None:
    paths = broker._paths(_settings(tmp_path))
    assert not broker._is_our_broker(os.getpid(), paths)  # this python process
    assert not broker._is_our_broker(1, paths)


def test_stale_pid_file_is_cleared_and_nothing_is_signalled(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    paths = broker._paths(settings)
    paths.root.mkdir(parents=True)
    paths.pid.write_text(f"{os.getpid()}\n")  # alive, but not a Kafka broker
    assert broker.stop_broker(settings) is None
    assert not paths.pid.exists()
    assert not broker.broker_status(settings).running


def test_status_of_a_data_dir_never_used(tmp_path: Path) -> None:
    status = broker.broker_status(_settings(tmp_path / "nothing-here"))
    assert not status.running
    assert status.pid is None
    assert status.bootstrap == "127.0.0.1:19092"
    assert not (tmp_path / "nothing-here").exists()


def test_port_check_sees_a_listening_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not broker._port_free(port)
        assert broker._accepts(port)
    assert broker._port_free(port)


def test_jars_present_follows_the_pom(tmp_path: Path) -> None:
    infra = tmp_path / "infra"
    (infra / "lib").mkdir(parents=True)
    (infra / "pom.xml").write_text("<project/>")
    assert not broker.jars_present(infra)
    (infra / "lib" / ".pom.sha256").write_text(broker._pom_digest(infra) + "\n")
    assert broker.jars_present(infra)
    (infra / "pom.xml").write_text("<project><!-- new version --></project>")
    assert not broker.jars_present(infra)


def test_missing_maven_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "pom.xml").write_text("<project/>")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(broker.BrokerError, match="Maven"):
        broker.fetch_jars(infra, progress=lambda _: None)


def test_a_configured_cluster_starts_no_local_broker(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="kafka.example:9092", data_dir=tmp_path)
    assert broker.ensure_broker(settings) == "kafka.example:9092"
    with broker.local_broker(settings) as bootstrap:
        assert bootstrap == "kafka.example:9092"
    assert not (tmp_path / "kafka").exists()
