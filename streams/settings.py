"""One frozen settings object, built once at an entry point and passed down.

Values come from (highest first) constructor arguments, ``DRIFTLOOP_*`` environment
variables (nested sections joined with ``__``, e.g. ``DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS``),
a ``.env`` file in the working directory, then the defaults below. Nothing else in the
project reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap_servers: str = Field(
        "127.0.0.1:19092", description="Comma-separated host:port list of the Kafka cluster."
    )
    client_id: str = Field("driftloop", description="Prefix of the Kafka client id.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Passed to kafka-python as security_protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = (
        Field(None, description="SASL mechanism when security_protocol is SASL_*.")
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password; never logged.")
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers.")
    ssl_certfile: Path | None = Field(None, description="Client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key for mutual TLS.")
    ssl_password: SecretStr | None = Field(None, description="Password of the client key.")
    max_message_bytes: int = Field(
        1_000_000,
        gt=0,
        description="Largest event payload accepted; bigger ones are dead-lettered as too_large.",
    )
    linger_ms: int = Field(5, ge=0, description="Producer batching delay in milliseconds.")
    batch_size: int = Field(65_536, gt=0, description="Producer batch size in bytes.")
    max_poll_records: int = Field(500, gt=0, description="Most records handed to one batch.")
    poll_timeout_ms: int = Field(200, gt=0, description="How long one poll waits for records.")
    session_timeout_ms: int = Field(
        10_000, gt=0, description="Consumer group session timeout; a dead member leaves after it."
    )
    request_timeout_ms: int = Field(30_000, gt=0, description="Kafka request timeout.")

    def client_config(self) -> dict[str, Any]:
        """Connection and security options in kafka-python's keyword names."""
        config: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s],
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.sasl_mechanism is not None:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                config["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if value is not None:
                config[name] = str(value)
        if self.ssl_password is not None:
            config["ssl_password"] = self.ssl_password.get_secret_value()
        return config


class TopicSettings(_Section):
    prefix: str = Field("driftloop", description="Every topic name starts with '<prefix>.'.")
    partitions: int = Field(3, gt=0, description="Partitions of newly created topics.")
    replication_factor: int = Field(1, gt=0, description="Replication of newly created topics.")


class DatabaseSettings(_Section):
    url: SecretStr | None = Field(
        None,
        description=(
            "SQLAlchemy URL (sqlite:///path or postgresql+psycopg://user:pw@host/db). "
            "Defaults to a SQLite file under the home directory."
        ),
    )
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")


class ServingSettings(_Section):
    max_batch: int = Field(256, gt=0, description="Most requests run in one forward pass.")
    canary_size: int = Field(
        32, gt=0, description="Recent requests a new model must score finitely before a swap."
    )
    metrics_port: int = Field(0, ge=0, description="Prometheus port; 0 disables the endpoint.")
    wait_for_model_s: float = Field(
        2.0, gt=0, description="Poll interval while no champion exists yet."
    )


class MonitorSettings(_Section):
    join_ttl_s: float = Field(
        3600.0, gt=0, description="How long an unmatched prediction or feedback waits."
    )
    max_pending: int = Field(
        200_000, gt=0, description="Most unmatched items kept per side; oldest expire first."
    )
    window_size: int = Field(500, gt=1, description="Examples per count-based drift window.")
    window_seconds: float = Field(
        300.0, gt=0, description="Longest a drift window stays open before it is closed."
    )
    reference_size: int = Field(
        1000, gt=1, description="Examples in the reference window when no lineage exists."
    )
    drift_share_threshold: float = Field(
        0.5, ge=0, le=1, description="Share of drifted columns that makes a window drifted."
    )
    drift_windows: int = Field(
        2, gt=0, description="Consecutive drifted windows that trigger retraining."
    )
    performance_margin: float = Field(
        0.05, ge=0, description="Windowed score this far below the champion's triggers retraining."
    )
    adwin_delta: float = Field(0.002, gt=0, lt=1, description="ADWIN confidence parameter.")
    cooldown_s: float = Field(
        600.0, ge=0, description="Least time between two retrain requests for one model."
    )
    min_fresh_labels: int = Field(
        200, ge=0, description="Fewest new labelled examples needed before retraining."
    )
    metrics_port: int = Field(0, ge=0, description="Prometheus port; 0 disables the endpoint.")


class RetrainSettings(_Section):
    trainer: str = Field(
        "retrain.mlp:MLPTrainer", description="Import path 'module:attr' of the trainer to use."
    )
    promotion_margin: float = Field(
        0.0, ge=0, description="How much a challenger must beat the champion's score by."
    )
    rollback_margin: float = Field(
        0.05, ge=0, description="Post-promotion drop versus the old champion that rolls back."
    )
    max_examples: int = Field(50_000, gt=0, description="Most examples in one training set.")
    recent_examples: int = Field(
        5_000, gt=0, description="The newest labelled examples always in the training set."
    )
    older_share: float = Field(
        0.2, ge=0, le=1, description="Share of the training set drawn from older data."
    )
    holdout_share: float = Field(
        0.2, gt=0, lt=1, description="Newest share of examples kept to compare models."
    )
    epochs: int = Field(30, gt=0, description="Most training epochs.")
    patience: int = Field(4, gt=0, description="Epochs without validation gain before stopping.")
    batch_size: int = Field(256, gt=0, description="Training batch size.")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    hidden: tuple[int, ...] = Field((64, 64), description="Hidden layer widths of the MLP.")
    seed: int = Field(0, description="Seed for splits, initialisation and shuffling.")
    schedule_interval_s: float | None = Field(
        None, gt=0, description="Retrain every model this often; None disables the schedule."
    )
    schedule_cron: str | None = Field(
        None, description="Crontab expression for scheduled retraining (overrides interval)."
    )


class DashboardSettings(_Section):
    port: int = Field(8501, gt=0, description="Port the Streamlit dashboard listens on.")
    refresh_s: float = Field(10.0, ge=0, description="Auto-refresh interval; 0 disables it.")
    open_viewing: bool = Field(
        True, description="Let visitors who are not signed in view the pages."
    )
    users: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="User name -> password hash ('pbkdf2_sha256$iterations$salt$hash').",
    )


class Settings(BaseSettings):
    """Everything a driftloop process needs to know, frozen once built."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTLOOP_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        frozen=True,
        extra="ignore",
    )

    home: Path = Field(
        Path(".driftloop"), description="Working folder: SQLite file, artifacts, broker state."
    )
    artifact_dir: Path | None = Field(
        None, description="Where model artifacts are written; defaults to <home>/artifacts."
    )
    log_level: str = Field("WARNING", description="Root log level (quiet by default).")
    models: tuple[str, ...] = Field(
        (),
        description="Model names this deployment serves; empty accepts any name.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        url = self.database_url
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError(f"database.url must be SQLite or PostgreSQL, not {url.split(':')[0]}")
        return self

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.home / 'driftloop.db'}"

    @property
    def artifacts(self) -> Path:
        return self.artifact_dir if self.artifact_dir is not None else self.home / "artifacts"
