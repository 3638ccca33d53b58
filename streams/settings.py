"""The twin's one settings object, read from ``TWIN_*`` environment variables and CLI flags.

Build it once at the entry point (:func:`load_settings`) and pass it down; nothing below the entry
point reads the environment.

With no ``kafka_bootstrap`` the twin runs its own single-node Kafka broker on 127.0.0.1
(:mod:`streams.broker`); with one, it uses that cluster and starts nothing. SASL and TLS options
are handed to every Kafka client through :meth:`Settings.kafka_python_kwargs` and
:meth:`Settings.aiokafka_kwargs`.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ENV_PREFIX",
    "SaslMechanism",
    "SecurityProtocol",
    "Settings",
    "env_var",
    "load_settings",
]

ENV_PREFIX = "TWIN_"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
Delivery = Literal["agent", "batch"]


def env_var(field: str) -> str:
    """The environment variable behind a settings field: ``broker_port`` -> ``TWIN_BROKER_PORT``."""
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    """Everything the twin's processes are configured with. Frozen; build it once."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        env_ignore_empty=True,
    )

    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers (host:port,...). Unset: run the local broker.",
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="Kafka client security protocol."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="SASL mechanism for SASL_PLAINTEXT / SASL_SSL."
    )
    sasl_username: str | None = Field(default=None, description="SASL username.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_cafile: Path | None = Field(
        default=None, description="CA bundle (PEM) to verify the brokers' TLS certificates."
    )
    data_dir: Path = Field(
        default=Path(".twin"),
        description="Folder for the twin's data: local broker log and state, DuckDB file.",
    )
    duckdb_path: Path = Field(
        default_factory=lambda data: Path(data["data_dir"]) / "twin.duckdb",
        description="DuckDB database file. Default: <data_dir>/twin.duckdb.",
    )
    broker_port: int = Field(
        default=9092, ge=1, le=65535, description="Local broker's client (PLAINTEXT) port."
    )
    broker_controller_port: int = Field(
        default=9093, ge=1, le=65535, description="Local broker's KRaft controller port."
    )
    broker_heap: str = Field(
        default="512m",
        pattern=r"^[1-9][0-9]*[kKmMgG]$",
        description="Local broker's JVM heap (-Xmx), e.g. 512m or 2g.",
    )
    broker_start_timeout_s: float = Field(
        default=60.0, gt=0, description="Seconds to wait for the local broker to accept clients."
    )
    run_id: str = Field(
        default="live",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="Name of the run: its rows in DuckDB and its snapshots are kept apart.",
    )
    group_id: str = Field(
        default="colossus-twin", min_length=1, description="Kafka consumer group of the workers."
    )
    tick_s: float = Field(
        default=10.0, gt=0, le=3600, description="Tick length in seconds of event time."
    )
    lateness_s: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="Event-time seconds a tick waits past its end for slower partitions.",
    )
    snapshot_every: int = Field(
        default=6, ge=1, description="Write a state snapshot every this many ticks."
    )
    delivery: Delivery = Field(
        default="agent",
        description="How facility.gpu reaches the fold: agent (a Faust agent's stream.take) "
        "or batch (each fetch of Faust's consumer as one batch; faster, see the README).",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Settings:
        if self.broker_port == self.broker_controller_port:
            raise ValueError("broker_port and broker_controller_port must differ")
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and (
            self.sasl_mechanism is None or self.sasl_username is None or self.sasl_password is None
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism, "
                "sasl_username and sasl_password"
            )
        if not uses_sasl and self.sasl_mechanism is not None:
            raise ValueError(
                f"sasl_mechanism is set but security_protocol is {self.security_protocol}; "
                "use SASL_PLAINTEXT or SASL_SSL"
            )
        return self

    # -- derived values -------------------------------------------------------------------------

    @property
    def uses_local_broker(self) -> bool:
        """True when no cluster is configured and the twin runs its own broker."""
        return self.kafka_bootstrap is None

    @property
    def local_bootstrap(self) -> str:
        """Bootstrap string of the local embedded broker."""
        return f"127.0.0.1:{self.broker_port}"

    @property
    def bootstrap_servers(self) -> str:
        """The configured cluster, else the local broker."""
        return self.kafka_bootstrap if self.kafka_bootstrap is not None else self.local_bootstrap

    @property
    def broker_dir(self) -> Path:
        """Where the local broker keeps its config, log segments, logs and pid file."""
        return self.data_dir / "kafka"

    def _uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def _sasl_kwargs(self) -> dict[str, Any]:
        if self.sasl_mechanism is None:
            return {}
        password = self.sasl_password.get_secret_value() if self.sasl_password else None
        return {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": password,
        }

    def kafka_python_kwargs(self, bootstrap: str | None = None) -> dict[str, Any]:
        """Keyword arguments for kafka-python's KafkaProducer/KafkaConsumer/KafkaAdminClient."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": bootstrap or self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            **self._sasl_kwargs(),
        }
        if self._uses_tls() and self.ssl_cafile is not None:
            kwargs["ssl_cafile"] = str(self.ssl_cafile)
        return kwargs

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context verifying against ``ssl_cafile`` (or the system CAs), or None."""
        if not self._uses_tls():
            return None
        cafile = str(self.ssl_cafile) if self.ssl_cafile is not None else None
        return ssl.create_default_context(cafile=cafile)

    def aiokafka_kwargs(self, bootstrap: str | None = None) -> dict[str, Any]:
        """Keyword arguments for aiokafka's AIOKafkaProducer/AIOKafkaConsumer."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": bootstrap or self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            **self._sasl_kwargs(),
        }
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        return kwargs


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with the given non-None values (CLI flags) on top."""
    return Settings(**{name: value for name, value in overrides.items() if value is not None})
