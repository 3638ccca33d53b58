"""The one settings object: defaults, TWIN_* environment, validation, client kwargs."""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings, env_var, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no TWIN_* variables, whatever the shell running pytest has."""
    for name in list(os.environ):
        if name.startswith("TWIN_"):
            monkeypatch.delenv(name)


def test_defaults_use_the_local_broker() -> None:
    s = Settings()
    assert s.kafka_bootstrap is None
    assert s.uses_local_broker
    assert s.bootstrap_servers == "127.0.0.1:9092" == s.local_bootstrap
    assert s.security_protocol == "PLAINTEXT"
    assert s.data_dir == Path(".twin")
    assert s.duckdb_path == Path(".twin") / "twin.duckdb"
    assert s.broker_dir == Path(".twin") / "kafka"
    assert (s.broker_port, s.broker_controller_port, s.broker_heap) == (9092, 9093, "512m")
    assert s.broker_start_timeout_s > 0


def test_duckdb_path_follows_data_dir_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_DATA_DIR", "/srv/twin")
    assert Settings().duckdb_path == Path("/srv/twin/twin.duckdb")
    monkeypatch.setenv("TWIN_DUCKDB_PATH", "/data/other.duckdb")
    assert Settings().duckdb_path == Path("/data/other.duckdb")


def test_environment_is_read_with_the_twin_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("TWIN_BROKER_PORT", "19092")
    monkeypatch.setenv("TWIN_BROKER_HEAP", "1g")
    s = Settings()
    assert s.kafka_bootstrap == "kafka-1:9092,kafka-2:9092"
    assert not s.uses_local_broker
    assert s.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert s.broker_port == 19092
    assert s.local_bootstrap == "127.0.0.1:19092"
    assert s.broker_heap == "1g"


def test_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_KAFKA_BOOTSTRAP", "")
    assert Settings().kafka_bootstrap is None


def test_explicit_values_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWIN_BROKER_PORT", "19092")
    monkeypatch.setenv("TWIN_DATA_DIR", "/from/env")
    s = load_settings(broker_port=29092, data_dir=None)  # None = flag not given
    assert s.broker_port == 29092
    assert s.data_dir == Path("/from/env")


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.broker_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("broker_port", "0"),
        ("broker_port", "70000"),
        ("broker_port", "not-a-port"),
        ("broker_heap", "512"),
        ("broker_heap", "lots"),
        ("broker_start_timeout_s", "0"),
        ("security_protocol", "TLS"),
        ("sasl_mechanism", "GSSAPI"),
    ],
)
def test_invalid_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, field: str, value: str
) -> None:
    monkeypatch.setenv(env_var(field), value)
    with pytest.raises(ValidationError):
        Settings()


def test_client_and_controller_ports_must_differ() -> None:
    with pytest.raises(ValidationError, match="must differ"):
        Settings(broker_port=9092, broker_controller_port=9092)


def test_sasl_protocol_needs_credentials() -> None:
    with pytest.raises(ValidationError, match="needs sasl_mechanism"):
        Settings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="u")


def test_sasl_mechanism_needs_a_sasl_protocol() -> None:
    with pytest.raises(ValidationError, match="SASL_PLAINTEXT or SASL_SSL"):
        Settings(sasl_mechanism="PLAIN", sasl_username="u", sasl_password="p")


def test_plaintext_client_kwargs_are_minimal() -> None:
    s = Settings(kafka_bootstrap="k:9092")
    plain = {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}
    assert s.kafka_python_kwargs() == plain
    assert s.aiokafka_kwargs() == plain
    assert s.kafka_python_kwargs("other:1")["bootstrap_servers"] == "other:1"


def test_sasl_ssl_is_passed_to_both_clients() -> None:
    s = Settings(
        kafka_bootstrap="k:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="twin",
        sasl_password="s3cret",
    )
    kp = s.kafka_python_kwargs()
    assert kp["security_protocol"] == "SASL_SSL"
    assert kp["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kp["sasl_plain_username"] == "twin"
    assert kp["sasl_plain_password"] == "s3cret"
    ak = s.aiokafka_kwargs()
    assert ak["sasl_plain_password"] == "s3cret"
    assert isinstance(ak["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(s)


def test_ssl_cafile_reaches_the_clients() -> None:
    system_cas = ssl.get_default_verify_paths().cafile
    if system_cas is None:
        pytest.skip("this Python has no default CA bundle file to use as a CA file")
    s = Settings(kafka_bootstrap="k:9093", security_protocol="SSL", ssl_cafile=system_cas)
    assert s.kafka_python_kwargs()["ssl_cafile"] == system_cas
    context = s.aiokafka_kwargs()["ssl_context"]
    assert context.cert_store_stats()["x509_ca"] > 0
    assert "sasl_mechanism" not in s.aiokafka_kwargs()


def test_env_var_names() -> None:
    assert env_var("broker_port") == "TWIN_BROKER_PORT"
    assert env_var("kafka_bootstrap") == "TWIN_KAFKA_BOOTSTRAP"


def test_readme_configuration_table_matches_settings() -> None:
    readme = (REPO / "README.md").read_text()
    table_vars = set(re.findall(r"^\|\s*`(TWIN_[A-Z0-9_]+)`", readme, flags=re.MULTILINE))
    assert table_vars == {env_var(name) for name in Settings.model_fields}
