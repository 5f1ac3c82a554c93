"""Settings shared by every service, read from LORAG_* environment variables.

The local profile (the default) fills in the credentials of the servers `lorag up` starts;
any other profile requires every secret to be given and refuses placeholders.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_POSTGRES_DSN = "postgresql://lorag:lorag@127.0.0.1:5432/lorag"
LOCAL_S3_ACCESS_KEY = "lorag-local"
LOCAL_S3_SECRET_KEY = "lorag-local-secret"
LOCAL_SERVICE_TOKEN = "lorag-local-service-token"
LOCAL_OTLP_ENDPOINT = "http://127.0.0.1:4318"  # the Jaeger `lorag up` starts
LOCAL_TRACE_UI_URL = "http://127.0.0.1:16686"
PLACEHOLDERS = {
    "changeme", "change-me", "secret", "password", "lorag", LOCAL_S3_SECRET_KEY,
    LOCAL_SERVICE_TOKEN,
}  # fmt: skip


class Profile(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


class KafkaSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LORAG_KAFKA_", extra="ignore")

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    partitions: int = Field(default=3, ge=1, description="Partitions of topics lorag creates.")
    max_message_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Larger messages are dead-lettered unread."
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="Starts of handling a message (a handler that fails, or a consumer that "
        "dies on it) before it is dead-lettered; counted in Postgres, so crashes count too.",
    )
    # Group membership. Every service process is a member of the job tracker's shared groups,
    # so these bound how long one frozen (SIGSTOP) or dead process holds the partitions it owns,
    # and with them job state for every job keyed there: the session timeout and about a second
    # more (6.9 s measured with these defaults, 11.1 s with the libraries' 10 s session:
    # `python -m tests.support.stall`, deploy/k8s/CAPACITY.md "The tracker stall"). Frozen
    # inside a tracker transaction, it also holds job rows: PostgresSettings bounds that.
    session_timeout_ms: int = Field(
        default=6000,
        ge=1000,
        description="A consumer that sends no heartbeat for this long (a frozen or dead "
        "process) is expelled from its groups and its partitions go to the other members. The "
        "broker's group.min.session.timeout.ms (6000 by default) is the floor it accepts.",
    )
    heartbeat_interval_ms: int = Field(
        default=1000,
        ge=100,
        description="Heartbeats to the group coordinator; a live member learns of a rebalance "
        "at the next one, so this bounds how late it rejoins. At most a third of the session.",
    )
    rebalance_timeout_ms: int = Field(
        default=15000,
        ge=1000,
        description="How long the coordinator waits for live members to rejoin a rebalance "
        "(a frozen one is expelled at its session timeout instead).",
    )
    max_poll_interval_ms: int = Field(
        default=60000,
        ge=1000,
        description="A member whose handler has not returned for this long (a hung process "
        "that still heartbeats) leaves its groups, so its partitions move on. Longer than any "
        "handler: they write to Postgres and retry with at most a few seconds of back-off.",
    )
    batch_wait_ms: int = Field(
        default=500,
        ge=1,
        le=1000,
        description="How long one poll of a batch subscriber (the tracker's progress fold) "
        "waits for records. Records are taken as soon as they are fetched, up to the batch "
        "size, whatever this is: it sets only how often an idle subscriber wakes.",
    )
    static_membership: bool = Field(
        default=False,
        description="Join groups as a static member named by LORAG_INSTANCE_ID (KIP-345): a "
        "restart within the session timeout causes no rebalance. It does not shorten a freeze "
        "(the member is still expelled only at its session timeout); instance ids must be "
        "unique and stable (Kubernetes: a StatefulSet's pod names).",
    )

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> KafkaSettings:
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ValueError(
                f"LORAG_KAFKA_HEARTBEAT_INTERVAL_MS ({self.heartbeat_interval_ms}) must be at most "
                f"a third of LORAG_KAFKA_SESSION_TIMEOUT_MS ({self.session_timeout_ms})"
            )
        return self


class PostgresSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LORAG_POSTGRES_", extra="ignore")

    dsn: SecretStr | None = Field(default=None, description="libpq connection string or URI.")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=8, ge=1)
    tracker_idle_in_transaction_ms: int = Field(
        default=5000,
        ge=100,
        description="Postgres ends a job-tracker transaction left idle this long: a process "
        "frozen (SIGSTOP) inside one would otherwise hold its job rows locked, and every other "
        "process projecting those jobs would wait on it until it thaws. Its transactions take "
        "milliseconds.",
    )


class S3Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LORAG_S3_", extra="ignore")

    endpoint: str = Field(default="127.0.0.1:9000", description="host:port of the S3 server.")
    access_key: str | None = None
    secret_key: SecretStr | None = None
    secure: bool = Field(default=False, description="Use TLS.")
    region: str | None = None
    buckets: tuple[str, ...] = Field(
        default=("lorag-datasets", "lorag-adapters", "lorag-artifacts"),
        description="Buckets ensured at start.",
    )


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LORAG_OTEL_", extra="ignore")

    endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP endpoint, e.g. http://otel-collector:4318; the local profile "
        "defaults to the Jaeger `lorag up` starts (http://127.0.0.1:4318); `off` exports nothing.",
    )
    trace_ui_url: str | None = Field(
        default=None,
        description="Where people read a trace: `<url>/trace/<trace id>` (Jaeger's UI); the local "
        "profile defaults to http://127.0.0.1:16686.",
    )
    jsonl_path: Path | None = Field(
        default=None, description="Also write finished spans as JSON lines to this file."
    )
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"


class WorkerSettings(BaseSettings):
    """How a job-running service claims work from the `work_items` queue."""

    model_config = SettingsConfigDict(env_prefix="LORAG_WORKER_", extra="ignore")

    lease_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a claim holds a job without renewal; a dead worker's job is taken "
        "over by another instance after this.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        description="Claims of one job before it FAILS with ATTEMPTS_EXHAUSTED: a job that kills "
        "its worker (an OOM kill, say) must not be claimed again forever.",
    )


def default_instance_id() -> str:
    """hostname-pid: unique per process, and the pod's name under Kubernetes."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    """Everything a lorag process needs to reach Kafka, Postgres, S3 and the tracing backend."""

    model_config = SettingsConfigDict(env_prefix="LORAG_", extra="ignore")

    profile: Profile = Profile.LOCAL
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    instance_id: str = Field(
        default_factory=default_instance_id,
        min_length=1,
        max_length=128,
        description="This process's name in job records (`worker`) and logs, e.g. "
        "rag-service-2 (LORAG_INSTANCE_ID); default: hostname-pid.",
    )
    service_token: SecretStr | None = Field(
        default=None,
        description="Shared secret services demand of each other on their HTTP APIs "
        "(Authorization: Bearer); the gateway and admin tools present it.",
    )
    stop_timeout_s: float = Field(
        default=33.0,
        gt=0,
        description="Seconds a service may take to stop after SIGTERM (handing jobs back, "
        "finishing in-flight messages, leaving its consumer groups); past them it logs what is "
        "stuck and exits 70. Keep it under Kubernetes' terminationGracePeriodSeconds (35).",
    )
    db_migrate_on_start: bool = Field(
        default=True,
        description="Apply pending schema migrations at start. Off where a release runs them "
        "once (Kubernetes: the lorag-db-upgrade Job); the service then waits for the schema.",
    )

    @model_validator(mode="after")
    def _secrets_for_profile(self) -> Settings:
        if self.profile is Profile.LOCAL:
            self.postgres.dsn = self.postgres.dsn or SecretStr(LOCAL_POSTGRES_DSN)
            self.s3.access_key = self.s3.access_key or LOCAL_S3_ACCESS_KEY
            self.s3.secret_key = self.s3.secret_key or SecretStr(LOCAL_S3_SECRET_KEY)
            self.service_token = self.service_token or SecretStr(LOCAL_SERVICE_TOKEN)
            self.telemetry.endpoint = self.telemetry.endpoint or LOCAL_OTLP_ENDPOINT
            self.telemetry.trace_ui_url = self.telemetry.trace_ui_url or LOCAL_TRACE_UI_URL
            return self
        missing = [
            name
            for name, value in (
                ("LORAG_POSTGRES_DSN", self.postgres.dsn),
                ("LORAG_S3_ACCESS_KEY", self.s3.access_key),
                ("LORAG_S3_SECRET_KEY", self.s3.secret_key),
                ("LORAG_SERVICE_TOKEN", self.service_token),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"profile {self.profile.value} needs {', '.join(missing)} to be set")
        assert self.s3.secret_key is not None and self.service_token is not None
        for name, secret in (
            ("LORAG_S3_SECRET_KEY", self.s3.secret_key),
            ("LORAG_SERVICE_TOKEN", self.service_token),
        ):
            if secret.get_secret_value().lower() in PLACEHOLDERS:
                raise ValueError(f"{name} is a placeholder; set a real secret")
        return self

    @property
    def service_secret(self) -> str:
        """The service token's value (filled in or required by the validator)."""
        assert self.service_token is not None
        return self.service_token.get_secret_value()

    @property
    def postgres_dsn(self) -> str:
        assert self.postgres.dsn is not None  # filled in or required by the validator
        return self.postgres.dsn.get_secret_value()
