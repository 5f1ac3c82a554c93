"""LocalStack: Kafka, Postgres, S3 and Jaeger started together under one state folder."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from ._process import LocalStackError, Server, file_lock, free_port
from .jaeger import Jaeger
from .kafka import Kafka
from .postgres import Postgres
from .s3 import ACCESS_KEY, S3, SECRET_KEY

__all__ = ["Endpoints", "LocalStack", "LocalStackError", "free_port"]

DEFAULT_STATE_DIR = Path(".lorag") / "local"
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoints:
    """Where clients reach the local servers."""

    kafka_bootstrap: str  # "127.0.0.1:9092"
    postgres_dsn: str  # "postgresql://lorag:lorag@127.0.0.1:5432/lorag"
    s3_endpoint: str  # "127.0.0.1:9000" (host:port, no scheme, as the minio SDK wants)
    s3_access_key: str
    s3_secret_key: str
    otlp_endpoint: str = "http://127.0.0.1:4318"  # Jaeger's OTLP/HTTP (LORAG_OTEL_ENDPOINT)
    trace_ui_url: str = "http://127.0.0.1:16686"  # Jaeger's UI and query API


def _port(value: str | None, default: int) -> int:
    """Port of the first host:port in value (a scheme is allowed); default when unset."""
    if not value:
        return default
    first = value.split(",")[0].strip()
    netloc = urlsplit(first if "://" in first else f"//{first}").netloc
    port = netloc.rsplit(":", 1)[1] if ":" in netloc else ""
    return int(port) if port.isdigit() else default


def _dsn_port(dsn: str | None, default: int) -> int:
    """Port of a libpq DSN (URL or key=value form); default when unset."""
    if not dsn:
        return default
    from psycopg.conninfo import conninfo_to_dict  # lazy: `import lorag_local` stays fast

    port = str(conninfo_to_dict(dsn).get("port") or "").split(",")[0]
    return int(port) if port.isdigit() else default


class LocalStack:
    """Starts, checks and stops real Kafka, Postgres and S3 servers; files under state_dir."""

    def __init__(
        self,
        state_dir: Path,
        *,
        kafka_port: int = 9092,
        postgres_port: int = 5432,
        s3_port: int = 9000,
        otlp_port: int = 4318,
        trace_ui_port: int = 16686,
        host: str = "127.0.0.1",
    ) -> None:
        # Absolute: pid checks match it against the servers' command lines.
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.host = host
        self.kafka = Kafka(self.state_dir, host, kafka_port)
        self.postgres = Postgres(self.state_dir, host, postgres_port)
        self.s3 = S3(self.state_dir, host, s3_port)
        self.jaeger = Jaeger(self.state_dir, host, otlp_port, trace_ui_port)
        self.servers: dict[str, Server] = {
            "kafka": self.kafka,
            "postgres": self.postgres,
            "s3": self.s3,
            "jaeger": self.jaeger,
        }

    @classmethod
    def from_env(cls, state_dir: Path | None = None) -> LocalStack:
        """Ports from LORAG_KAFKA_BOOTSTRAP_SERVERS / LORAG_POSTGRES_DSN / LORAG_S3_ENDPOINT when set, else the defaults; state_dir default: $LORAG_STATE_DIR or ./.lorag/local"""  # noqa: E501
        env = os.environ
        return cls(
            state_dir or Path(env.get("LORAG_STATE_DIR") or DEFAULT_STATE_DIR),
            kafka_port=_port(env.get("LORAG_KAFKA_BOOTSTRAP_SERVERS"), 9092),
            postgres_port=_dsn_port(env.get("LORAG_POSTGRES_DSN"), 5432),
            s3_port=_port(env.get("LORAG_S3_ENDPOINT"), 9000),
            otlp_port=_port(env.get("LORAG_OTEL_ENDPOINT"), 4318),
            trace_ui_port=_port(env.get("LORAG_OTEL_TRACE_UI_URL"), 16686),
        )

    @property
    def endpoints(self) -> Endpoints:
        """Client settings for the three servers."""
        return Endpoints(
            kafka_bootstrap=self.kafka.endpoint,
            postgres_dsn=self.postgres.dsn,
            s3_endpoint=self.s3.endpoint,
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            otlp_endpoint=self.jaeger.otlp_url,
            trace_ui_url=self.jaeger.query_url,
        )

    def up(self, progress: Callable[[str], None] = print) -> Endpoints:
        """Start whatever is not running yet (concurrently), wait until all are ready."""
        lock = threading.Lock()

        def report(line: str) -> None:
            with lock:  # three threads report; keep their lines whole
                progress(line)

        # One `up` per state_dir at a time: a second one waits, then finds everything ready.
        with file_lock(self.state_dir / "run" / "up.lock"):
            results = self._each(lambda server: server.ensure_up(report))
        self._raise_failures("could not start", results)
        return self.endpoints

    def down(self) -> None:
        """Stop the servers this state_dir started (SIGTERM/SIGINT, wait, SIGKILL). Idempotent."""
        self._raise_failures("could not stop", self._each(lambda server: server.stop()))

    def status(self) -> dict[str, dict]:
        """Per server: endpoint, running, ready (real protocol check), pid, log path."""
        results = self._each(lambda server: server.status())
        self._raise_failures("could not check", results)
        return {name: result for name, result in results.items() if isinstance(result, dict)}

    def _each(self, action: Callable[[Server], T]) -> dict[str, T | BaseException]:
        """Run action on every server in parallel; map name -> result or the exception raised."""
        with ThreadPoolExecutor(len(self.servers)) as pool:
            futures = {name: pool.submit(action, server) for name, server in self.servers.items()}
        return {name: future.exception() or future.result() for name, future in futures.items()}

    @staticmethod
    def _raise_failures(verb: str, results: Mapping[str, object]) -> None:
        failures = {name: r for name, r in results.items() if isinstance(r, BaseException)}
        if failures:
            text = "\n\n".join(
                str(error) if isinstance(error, LocalStackError) else f"{name}: {error!r}"
                for name, error in failures.items()
            )
            raise LocalStackError(f"lorag local stack {verb} {', '.join(failures)}:\n{text}")
