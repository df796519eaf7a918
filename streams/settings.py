"""One frozen settings object, built once at an entry point and passed down.

Values come from (highest first) constructor arguments, ``DRIFTLOOP_*`` environment
variables (nested sections joined with ``__``, e.g. ``DRIFTLOOP_KAFKA__BOOTSTRAP_SERVERS``),
a ``.env`` file in the working directory, then the defaults below. Nothing else in the
project reads ``os.environ``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

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
    fetch_max_wait_ms: int = Field(
        100,
        gt=0,
        description=(
            "Longest the broker may hold a consumer's fetch while it waits for data. Some "
            "brokers (Tansu) hold every fetch to this limit even when data is there, so a "
            "small value keeps consumers from stalling; Kafka's own default is 500."
        ),
    )
    session_timeout_ms: int = Field(
        10_000, gt=0, description="Consumer group session timeout; a dead member leaves after it."
    )
    request_timeout_ms: int = Field(30_000, gt=0, description="Kafka request timeout.")
    bootstrap_timeout_ms: int = Field(
        30_000, gt=0, description="How long a client tries to reach the cluster when it starts."
    )
    reconnect_backoff_ms: int = Field(
        1_000,
        gt=0,
        description=(
            "Wait before a client first tries a broker again after losing its connection; "
            "it doubles after each failed try, up to reconnect_backoff_max_ms."
        ),
    )
    reconnect_backoff_max_ms: int = Field(
        5_000,
        gt=0,
        description=(
            "Longest wait between two tries to reach a broker that is down, so a client is "
            "back within about this long after the broker is (kafka-python's own default of "
            "30 s left serving silent for half a minute after an outage)."
        ),
    )

    def client_config(self) -> dict[str, Any]:
        """Connection and security options in kafka-python's keyword names."""
        config: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s],
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
            "reconnect_backoff_ms": self.reconnect_backoff_ms,
            "reconnect_backoff_max_ms": max(self.reconnect_backoff_max_ms,
                                            self.reconnect_backoff_ms),
        }
        # Credentials go only where the protocol uses them, so no client holds (or logs) a
        # password it never sends.
        if self.sasl_mechanism is not None and self.security_protocol.startswith("SASL"):
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                config["sasl_plain_password"] = self.sasl_password.get_secret_value()
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            value = getattr(self, name)
            if value is not None:
                config[name] = str(value)
        if self.ssl_password is not None and self.security_protocol.endswith("SSL"):
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
    fetch_max_wait_ms: int = Field(
        20,
        gt=0,
        description=(
            "Longest the broker may hold a fetch of requests while waiting for data; small "
            "keeps latency low on brokers that hold every fetch to the limit (Tansu)."
        ),
    )
    cpu_threads: int = Field(
        1,
        ge=0,
        description=(
            "torch intra-op threads for inference on CPU; 0 keeps torch's default (one per "
            "core). One suits small models: micro-batches gain little from more, and extra "
            "threads stall when other processes share the cores."
        ),
    )


class MonitorSettings(_Section):
    join_ttl_s: float = Field(
        3600.0,
        gt=0,
        description=(
            "How long an unmatched prediction or feedback waits in memory; also the largest "
            "gap between a prediction's and its feedback's timestamps that still joins."
        ),
    )
    max_pending: int = Field(
        200_000, gt=0, description="Most unmatched items kept per side; oldest expire first."
    )
    group_id: str = Field(
        "monitor",
        min_length=1,
        description="Consumer group of the monitor, under the topic prefix ('<prefix>-<id>').",
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
    quality_margin: float = Field(
        0.1, ge=0, le=1,
        description=(
            "How far above the reference a window's share of nulls, out-of-range numbers or "
            "unseen categories may be before a feature counts as violated."
        ),
    )
    performance_margin: float = Field(
        0.05, ge=0, description="Windowed score this far below the champion's triggers retraining."
    )
    adwin_delta: float = Field(0.002, gt=0, lt=1, description="ADWIN confidence parameter.")
    trend_confidence: float = Field(
        0.9999, gt=0.5, lt=1,
        description="Confidence of the one-sided Mann-Kendall test that the champion's windowed "
        "error is rising (the gradual_drift reason, monitor/trend.py).",
    )
    trend_windows: int = Field(
        40, ge=3, description="Most recent labelled windows the slow-drift trend is tested on."
    )
    trend_min_windows: int = Field(
        10, ge=3, description="Fewest labelled windows of a champion before its trend is tested."
    )
    trend_margin: float = Field(
        0.02, ge=0,
        description="How far above the champion's validation error the trend line must end "
        "(absolute for 1 - accuracy and the like, relative for MSE, MAE, RMSE).",
    )
    cooldown_s: float = Field(
        600.0, ge=0, description="Least time between two retrain requests for one model."
    )
    min_fresh_labels: int = Field(
        200, ge=0, description="Fewest new labelled examples needed before retraining."
    )
    metrics_port: int = Field(0, ge=0, description="Prometheus port; 0 disables the endpoint.")
    min_window_rows: int = Field(
        30, gt=1, description="Fewest rows a window needs for a drift report and the policy."
    )
    estimate_windows: int = Field(
        2, gt=0,
        description="Consecutive served windows whose estimated accuracy or F1 falls below its "
        "band before retraining is asked for (the estimated_performance reason). One window "
        "alone fired on stationary stretches of the lab's streams; two in a row did not.",
    )
    page_hinkley_delta: float = Field(
        0.03,
        gt=0,
        description="Page-Hinkley tolerance: error-rate increases smaller than this are ignored.",
    )
    page_hinkley_threshold: float = Field(
        50.0, gt=0, description="Page-Hinkley alarm level of the cumulative error excess."
    )
    detector_replay: int = Field(
        100_000,
        gt=0,
        description="Most recent labelled errors replayed to rebuild the detectors on start.",
    )
    request_timeout_s: float = Field(
        21_600.0,
        gt=0,
        description="An open retrain request with no newer promotion closes after this long.",
    )
    drift_workers: Literal["process", "thread"] = Field(
        "process",
        description="Where Evidently reports run: a child process (no GIL contention) or a "
        "thread of the monitor.",
    )
    drift_queue: int = Field(
        2, gt=0, description="Most drift reports running or queued in the worker at once."
    )
    drift_backlog: int = Field(
        200,
        gt=0,
        description="Most closed windows waiting for a report; beyond it the oldest are skipped.",
    )
    lag_interval_s: float = Field(
        15.0, gt=0, description="How often the consumer lag gauge is refreshed."
    )
    drift_kinds: tuple[Literal["served", "labelled"], ...] = Field(
        ("served", "labelled"),
        description="Windows that get an Evidently report: 'served' (predictions as they "
        "arrive: features and prediction) and 'labelled' (joined examples, label included).",
    )
    full_snapshots: bool = Field(
        False,
        description="Also keep Evidently's full snapshot (rendered widgets, ~60 kB per column) "
        "of each report, not only its results JSON.",
    )


class SearchSettings(_Section):
    """The challenger pool of a run: candidates from an Optuna study (see retrain/search.py)."""

    # One trial by default: the run trains the single candidate of the settings above, exactly
    # as without a search (no study, no Optuna tables). A search multiplies a run's training
    # time by its trials, and the test suite and the adaptation benchmark retrain hundreds of
    # times; a deployment that can afford it sets, say, trials=20 and a timeout_s.
    trials: int = Field(
        1, ge=1,
        description="Candidates a run that trains from scratch may try (a drift request, a "
        "manual or scheduled run; never a fine-tuning refresh); the best on validation goes "
        "to the champion/challenger gate. The first is always the candidate of these "
        "settings (learning_rate, hidden, no dropout or weight decay, the whole training "
        "split), the rest are drawn by Optuna's TPE sampler from the space of "
        "retrain/space.py. 1 runs no search.",
    )
    timeout_s: float = Field(
        900.0, gt=0,
        description="Wall-clock budget of a search in seconds: no new trial starts after it "
        "(one that runs finishes). At least one trial always runs.",
    )


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
    patience: int = Field(6, gt=0, description="Epochs without validation gain before stopping.")
    batch_size: int = Field(256, gt=0, description="Training batch size.")
    min_batches: int = Field(
        16, gt=0,
        description="Fewest mini-batches per epoch: a small training set (a few hundred "
        "examples after a drift) is cut into smaller batches, so that it still gets enough "
        "optimiser steps.",
    )
    learning_rate: float = Field(3e-3, gt=0, description="Adam learning rate.")
    hidden: tuple[int, ...] = Field((64, 64), description="Hidden layer widths of the MLP.")
    search: SearchSettings = Field(default_factory=SearchSettings)
    seed: int = Field(0, description="Seed for splits, initialisation and shuffling.")
    schedule_interval_s: float | None = Field(
        None, gt=0, description="Retrain every model this often; None disables the schedule."
    )
    schedule_cron: str | None = Field(
        None, description="Crontab expression for scheduled retraining (overrides interval)."
    )
    schedules: dict[str, float | str] = Field(
        default_factory=dict,
        description=(
            "Per-model schedule overriding the two above: model -> seconds between runs, or a "
            "crontab expression (e.g. {\"churn\": 3600, \"fraud\": \"0 3 * * *\"})."
        ),
    )
    task: Literal["auto", "classification", "regression"] = Field(
        "auto",
        description="What the models predict; 'auto' infers it from the labels (text, booleans "
        "or few distinct integers mean classification).",
    )
    min_examples: int = Field(
        200, gt=0, description="Fewest labelled examples a run needs; with fewer it fails."
    )
    validation_share: float = Field(
        0.15, gt=0, lt=1,
        description="Newest share of the training examples used for early stopping.",
    )
    estimate_chunk_rows: int = Field(
        500, gt=1,
        description="Rows per reference chunk on which a classifier's estimated-performance "
        "band is measured (fewer when the validation split is small); best the monitor's "
        "window_size.",
    )
    estimate_band_width: float = Field(
        3.0, gt=0,
        description="Half-width of the estimated-performance band, in standard deviations of "
        "the estimate on reference chunks.",
    )
    promotion_metric: Literal["auto", "accuracy", "f1", "precision", "recall", "mse", "mae"] = (
        Field(
            "auto",
            description="Holdout score compared between champion and challenger; 'auto' is "
            "accuracy for classification and mse for regression. The margin is in its units.",
        )
    )
    rollback_windows: int = Field(
        2, gt=0,
        description="Monitor windows of a new champion averaged before an automatic rollback.",
    )
    rollback_metric: str | None = Field(
        None,
        description="Key of DriftReport.performance compared for automatic rollback; None picks "
        "the first of accuracy, f1, mae, mse, rmse that the reports carry.",
    )
    device: str | None = Field(
        None, description="Torch device to train on ('cuda', 'cpu'); None uses CUDA when present."
    )
    workers: int = Field(
        2, gt=0, description="Training runs that may proceed at once (always one per model)."
    )
    cpu_threads: int | None = Field(
        1, gt=0,
        description="Torch CPU threads when training on the CPU; small tabular networks train "
        "fastest on one (see benchmarks/bench_train.py). None keeps torch's default.",
    )
    change_point_z: float = Field(
        5.0, gt=0,
        description="A drift-triggered run dates the drift at the most significant rise of the "
        "champion's error rate when its z-score reaches this, and then trains on (and judges "
        "on) the examples since.",
    )
    drift_older_share: float = Field(
        0.0, ge=0, le=1,
        description="Share of a post-drift training set drawn from before the drift (instead "
        "of older_share).",
    )
    drift_wait_s: float = Field(
        1_800.0, ge=0,
        description="Longest a drift-triggered run waits for min_examples labelled examples "
        "since the drift; after it, it trains on the usual split.",
    )
    drift_retry_s: float = Field(
        2.0, gt=0,
        description="How often a drift-triggered run that waits for labels looks again.",
    )
    followup_growth: float = Field(
        1.5, ge=0,
        description="After a drift, retrain again each time the examples since it have grown "
        "this many times over what the champion learnt from, until recent_examples of them "
        "fill a training set; 1 or less disables these follow-up runs.",
    )
    refresh_every_labels: int = Field(
        2_000, ge=0,
        description="Refresh a model (a run of kind 'refresh': fine-tuned from its champion on "
        "the newest recent_examples, through the usual champion/challenger gate) each time "
        "this many labelled examples have arrived that are newer than anything a run of it has "
        "seen. Drift requests go first: no refresh is queued or started while one waits, and "
        "a model has at most one refresh queued or running. 0 disables these refreshes.",
    )
    fine_tune: Literal["never", "refreshes", "unless-abrupt"] = Field(
        "refreshes",
        description="When a run starts from the champion's weights (or checkpoints[model]) "
        "instead of from scratch: 'refreshes' for scheduled, follow-up and label-driven "
        "refresh runs (drift requests and manual runs train from scratch), 'unless-abrupt' for "
        "every run, 'never' for none. Whatever the setting, a run trains from scratch when it "
        "dated an abrupt drift or the champion learnt only from before the current concept.",
    )
    fine_tune_learning_rate: float = Field(
        1e-3, gt=0,
        description="Adam learning rate when fine-tuning: lower than learning_rate, so that a "
        "refresh adjusts what the model knows rather than overwriting it.",
    )
    fine_tune_epochs: int = Field(
        10, gt=0,
        description="Most epochs of a fine-tune (early stopping as usual; the starting weights "
        "count as epoch 0, so a fine-tune never ends worse on validation than it began).",
    )
    checkpoints: dict[str, Path] = Field(
        default_factory=dict,
        description="Model -> a local artifact to fine-tune from instead of its champion (its "
        "folder, or the manifest.json or weights.safetensors in it; the format of "
        "streams/artifacts.py), e.g. {\"churn\": \"/models/churn-pretrained\"}. Also the start "
        "of a model's first fine-tuning run, before it has a champion.",
    )
    reuse_candidates: int = Field(
        3, ge=0,
        description="On a drift request, this many of the newest archived versions (former "
        "champions; never refused or rolled-back ones) are scored next to the champion, before "
        "any training, on the holdout a challenger would be judged on (the newest holdout_share "
        "of the examples since the drift when the run dates it); one that beats the champion "
        "by more than promotion_margin is promoted again at once ('reused vN') and nothing is "
        "trained. 0 disables reuse.",
    )
    reuse_confidence: float = Field(
        0.95, ge=0, lt=1,
        description="An archived version is reused only if, row by row on that holdout, it is "
        "right where the champion is wrong (closer to the target, for regression) "
        "significantly more often than the reverse: a one-sided sign test (McNemar's exact "
        "test for classes) at this confidence. It keeps a few lucky rows of the small slice "
        "just after a drift from bringing back a model of an older concept; 0 turns the test "
        "off.",
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
    address: str = Field(
        "127.0.0.1",
        description="Address the dashboard listens on ('0.0.0.0' for all interfaces).",
    )
    oidc_provider: str | None = Field(
        None,
        description=(
            "Offer Streamlit's OpenID Connect sign-in with this provider of the [auth] section "
            "of .streamlit/secrets.toml ('default' for the unnamed one); needs Authlib."
        ),
    )
    oidc_allowed: tuple[str, ...] = Field(
        (),
        description=(
            "E-mail addresses that may act after an OIDC sign-in; empty lets everyone the "
            "provider signs in act."
        ),
    )


#: What an alert rule can watch (see :mod:`monitor.alerts`).
ALERT_EVENTS = ("drift", "data_quality", "estimated_drop", "promotion", "rollback",
                "swap_refused", "dead_letter_spike")


class AlertRule(_Section):
    """Tell someone when ``event`` happens to ``model`` ('*': any model)."""

    event: str = Field(description=f"One of {', '.join(ALERT_EVENTS)}.")
    model: str = Field("*", description="A model name, or '*' for every model.")
    severity: Literal["info", "warning", "critical"] = "warning"
    dedup_s: float = Field(
        3600.0, ge=0, description="An alert saying the same thing again is dropped this long."
    )
    cooldown_s: float = Field(
        600.0, ge=0, description="After an alert the rule stays quiet for its model this long."
    )

    @model_validator(mode="after")
    def _known_event(self) -> AlertRule:
        if self.event not in ALERT_EVENTS:
            raise ValueError(f"unknown alert event {self.event!r}: one of "
                             f"{', '.join(ALERT_EVENTS)}")
        return self


def _default_rules() -> tuple[AlertRule, ...]:
    return (
        AlertRule(event="drift"), AlertRule(event="data_quality"),
        AlertRule(event="estimated_drop"),
        AlertRule(event="rollback", severity="critical"),
        AlertRule(event="swap_refused", severity="critical"),
        AlertRule(event="dead_letter_spike"),
        AlertRule(event="promotion", severity="info", cooldown_s=0.0),
    )


class AlertSettings(_Section):
    urls: tuple[SecretStr, ...] = Field(
        (),
        description=(
            "Where alerts go, as Apprise URLs (slack://..., mailto://..., json://host/path "
            "for a generic webhook); empty: alerts are only logged."
        ),
    )
    rules: tuple[AlertRule, ...] = Field(default_factory=_default_rules)
    dashboard_url: str = Field(
        "http://127.0.0.1:8501", description="The dashboard's address, for the links in alerts."
    )
    dead_letters_per_minute: int = Field(
        20, gt=0, description="Dead letters within a minute that make a dead_letter_spike."
    )
    max_age_s: float = Field(
        3600.0, gt=0,
        description="Events older than this are not told (a first start reads the history).",
    )
    attempts: int = Field(5, gt=0, description="Deliveries tried per alert before giving up.")
    retry_max_s: float = Field(60.0, gt=0, description="Longest wait between two deliveries.")
    queue: int = Field(1000, gt=0, description="Alerts waiting for delivery before new ones drop.")
    group_id: str = Field("alerts", description="Consumer group suffix of driftloop alerts.")
    metrics_port: int = Field(0, ge=0, description="Prometheus port; 0 disables the endpoint.")


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
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        url = self.database_url
        if not url.startswith(("sqlite", "postgresql")):
            raise ValueError(f"database.url must be SQLite or PostgreSQL, not {url.split(':')[0]}")
        unknown = sorted({r.model for r in self.alerts.rules if r.model != "*"}
                         - set(self.models)) if self.models else []
        if unknown:
            raise ValueError(f"alert rules name unknown models {unknown}: models are "
                             f"{list(self.models)}")
        return self

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.home / 'driftloop.db'}"

    def secret_values(self) -> tuple[str, ...]:
        """Every secret these settings hold, for the log filter that redacts them: each
        ``SecretStr`` (SASL and key passwords, the database URL, dashboard password hashes)
        and the password inside the database URL."""
        found = list(_secrets_in(self))
        try:
            password = urlsplit(self.database_url).password
        except ValueError:
            password = None
        if password:
            found += [password, unquote(password)]
        for url in self.alerts.urls:  # tokens stand in the path too (slack://A/B/C)
            found += _url_parts(url.get_secret_value())
        return tuple(dict.fromkeys(value for value in found if value))

    @property
    def artifacts(self) -> Path:
        return self.artifact_dir if self.artifact_dir is not None else self.home / "artifacts"


def _url_parts(url: str) -> list[str]:
    """The parts of a notification URL that may be credentials, of 8 characters or more: user,
    password, host (Apprise puts tokens there: ``slack://TokenA/TokenB/TokenC``), path
    segments and query values."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2].partition(":")[0]  # as written: not lowercased
        pieces = [parts.username or "", parts.password or "", host,
                  *parts.path.split("/"),
                  *(p.partition("=")[2] for p in parts.query.split("&"))]
    except ValueError:
        return []
    return [p for piece in pieces for p in (piece, unquote(piece)) if len(p) >= 8]


def _secrets_in(value: Any) -> list[str]:
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, tuple | list):
        return [s for item in value for s in _secrets_in(item)]
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _secrets_in(getattr(value, name))]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secrets_in(item)]
    return []
