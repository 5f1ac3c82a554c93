"""The scaffolding of a service process: broker, Postgres pool, object store, HTTP API, SIGTERM.

A service's composition root creates a `ServiceHost`, registers its subscribers on
`host.broker` and its routes with `host.add_routes`, and calls `host.run()`. Connections open
in the lifespan, never at import.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from psycopg_pool import AsyncConnectionPool

from lorag_core import metrics
from lorag_core.db import migrations, work
from lorag_core.db.pool import open_pool
from lorag_core.messaging.batches import wait_in_poll
from lorag_core.messaging.broker import make_broker
from lorag_core.messaging.delivery import Delivery, raw_body
from lorag_core.messaging.topics import ensure_topics
from lorag_core.service.api import protected, service_app
from lorag_core.service.deadline import StopDeadline
from lorag_core.service.http import ApiServer
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from lorag_core.telemetry import setup_logging, setup_tracing

log = logging.getLogger(__name__)
Hook = Callable[["Runtime"], Awaitable[None]]


# When the cyclic collector runs once a service has started: after 50,000 new container
# objects rather than Python's 700, and each older generation after 20 of the younger one's
# runs (10). Handling messages allocates objects by the hundred thousand a second (a decoded
# progress event alone is a dozen), so with 700 the youngest generation was collected every
# few dozen events. The tracker's projection of `bench events`' 100,000 progress events read
# 18,831-22,372 events/s (median 20,640) with these thresholds and 18,403-19,849 (median
# 18,796) with Python's, in six alternating rounds of `bench.events.projection_rate` on
# 2 cores, this constant edited between rounds; they won all six. Garbage in cycles lives a
# little longer: the tracker's peak RSS over that projection rose by 1.3-1.4 MiB (157.6 to
# 158.9, 160.4 to 161.8; two rounds each).
GC_THRESHOLDS = (50_000, 20, 20)


def settle_heap() -> int:
    """Collect the garbage of starting up, freeze what is left out of the cyclic collector, and
    collect less often from now on (`GC_THRESHOLDS`).

    What a started service holds (modules, clients, models) lives as long as the process, yet
    every full collection walked all of it again, and handling messages allocates enough to set
    collections off all the time. The tracker's projection of `bench events`' 100,000
    progress events read 18,940-26,807 events/s with the heap frozen and 16,340-20,132 without
    this call, in four alternating rounds of `bench.events.projection_rate` (medians 21,394 and
    16,683). Returns how many objects were frozen.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    frozen = gc.get_freeze_count()
    metrics.GC_FROZEN.set(frozen)
    return frozen


@dataclass
class Runtime:
    """The heavy, shared things of one process; filled in when the process starts."""

    settings: Settings
    service: str
    broker: KafkaBroker
    pool: AsyncConnectionPool | None = None
    objects: ObjectStore | None = None
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def db(self) -> AsyncConnectionPool:
        if self.pool is None:
            raise RuntimeError("the Postgres pool is opened when the service starts")
        return self.pool


async def runtime_of(request: Request) -> Runtime:
    """The process's runtime, for a route (FastAPI dependency).

    async: FastAPI runs a plain `def` dependency on its thread pool, a hop there and back on
    every request for a dictionary lookup."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(runtime_of)]
SCHEMA_POLL_S = 5.0


async def prepare_schema(settings: Settings, poll_s: float = SCHEMA_POLL_S) -> None:
    """Upgrade the schema, or (LORAG_DB_MIGRATE_ON_START=false) wait until a release job has.

    With many replicas, one migration run per release (a Kubernetes Job) replaces one per start;
    a replica that starts first then waits here instead of running against an old schema.
    """
    dsn = settings.postgres_dsn
    if settings.db_migrate_on_start:
        await asyncio.to_thread(migrations.upgrade, dsn)
        return
    while pending := (await asyncio.to_thread(migrations.status, dsn)).pending:
        names = ", ".join(f"{m['component']} {m['version']:04d}" for m in pending[:5])
        log.warning(
            "waiting for %d schema migrations (%s): migrations at start are off "
            "(LORAG_DB_MIGRATE_ON_START=false); run `lorag db upgrade` or the release's job",
            len(pending), names,
        )  # fmt: skip
        await asyncio.sleep(poll_s)


class ServiceHost:
    """Builds the broker and runs a service until SIGTERM, then stops it cleanly."""

    def __init__(
        self,
        service: str,
        settings: Settings,
        *,
        health_host: str = "127.0.0.1",
        health_port: int = 0,
    ) -> None:
        self.service = service
        self.settings = settings
        self.tracer_provider = setup_tracing(settings.telemetry, service)
        self.broker = make_broker(
            settings.kafka,
            client_id=service,
            tracer_provider=self.tracer_provider,
            logger=logging.getLogger(f"lorag.{service}.broker"),
        )
        self.runtime = Runtime(settings=settings, service=service, broker=self.broker)
        self.api: FastAPI = service_app(
            service, self._readiness, settings.service_secret, instance_id=settings.instance_id
        )
        self.api.state.runtime = self.runtime
        self.works = False  # register_worker sets it: /metrics then reports the backlog
        self.api.add_api_route("/metrics", self._metrics, methods=["GET"], include_in_schema=False)
        self.http = ApiServer(self.api, health_host, health_port, name=f"{service} API")
        self._on_start: list[Hook] = []
        self._after_start: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._before_broker_stops: list[Hook] = []
        self._deliveries: list[Delivery] = []
        # Ready means able to take work: the subscribers listen and the after-start hooks (the
        # worker loops) run. The API answers earlier, while the broker still joins its groups.
        self._started = False

    def delivery(self, consumer_group: str) -> Delivery:
        """At-least-once delivery with dead letters for one of this service's consumer groups."""
        delivery = Delivery(
            self.broker,
            consumer_group,
            max_message_bytes=self.settings.kafka.max_message_bytes,
            max_attempts=self.settings.kafka.max_attempts,
            pool=lambda: self.runtime.db,
        )
        self._deliveries.append(delivery)
        return delivery

    def at_least_once(
        self,
        topic: str,
        delivery: Delivery,
        *,
        batch_size: int | None = None,
        fetch_bytes: int | None = None,
        pipelined: bool = False,
    ) -> Any:
        """Subscribe a consumer group: offsets commit only after the handler returned.

        The handler receives raw bytes (decoding is the Delivery's, so it can dead-letter them);
        with `batch_size`, it receives up to that many records at once (`fetch_bytes`: the most
        a fetch brings of one partition, Kafka's 1 MiB unless given, room enough for them).
        Membership timeouts come from the Kafka settings: they bound how long a frozen member can
        hold its partitions.
        `pipelined` (batches only): acks are manual, and the handler passes each batch to
        `Delivery.pipelined_batch`, which commits a batch's offsets once it was handled.
        """
        kafka = self.settings.kafka
        membership: dict[str, Any] = {
            "session_timeout_ms": kafka.session_timeout_ms,
            "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
            "rebalance_timeout_ms": kafka.rebalance_timeout_ms,
            "max_poll_interval_ms": kafka.max_poll_interval_ms,
        }
        if kafka.static_membership:  # KIP-345: unique per group, so the instance id will do
            membership["group_instance_id"] = self.settings.instance_id
        batching: dict[str, Any] = {}
        if batch_size:
            batching = {
                "batch": True,
                "max_records": batch_size,
                "batch_timeout_ms": kafka.batch_wait_ms,
            }
            if fetch_bytes:
                batching["max_partition_fetch_bytes"] = fetch_bytes
        if pipelined and not batch_size:
            raise ValueError("a pipelined subscriber takes batches: give batch_size")
        acks = AckPolicy.MANUAL if pipelined else AckPolicy.NACK_ON_ERROR
        subscriber = self.broker.subscriber(
            topic, group_id=delivery.consumer, ack_policy=acks,
            auto_offset_reset="earliest", decoder=raw_body, **batching, **membership,
        )  # fmt: skip
        return wait_in_poll(subscriber) if batch_size else subscriber

    def add_routes(self, router: APIRouter) -> None:
        """Serve the router on the service port, for callers holding the service token."""
        self.api.include_router(**protected(router))

    def on_start(self, hook: Hook) -> Hook:
        self._on_start.append(hook)
        return hook

    def after_start(self, hook: Hook) -> Hook:
        """Run once the broker is connected and the subscribers listen (workers start here)."""
        self._after_start.append(hook)
        return hook

    def on_stop(self, hook: Hook) -> Hook:
        """Run after the broker has closed, as the service stops."""
        self._on_stop.append(hook)
        return hook

    def before_broker_stops(self, hook: Hook) -> Hook:
        """Run first as the service stops, while the broker can still publish (workers stop
        here: a job stopped mid-report must not find the producer gone)."""
        self._before_broker_stops.append(hook)
        return hook

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        settings = self.settings
        await prepare_schema(settings)
        self.runtime.pool = await open_pool(
            settings.postgres_dsn,
            min_size=settings.postgres.pool_min,
            max_size=settings.postgres.pool_max,
        )
        self.runtime.objects = ObjectStore.from_settings(settings.s3)
        await asyncio.to_thread(self.runtime.objects.ensure_buckets, settings.s3.buckets)
        await ensure_topics(settings.kafka.bootstrap_servers, settings.kafka.partitions)
        for hook in self._on_start:
            await hook(self.runtime)
        await self.http.start()
        try:
            yield
        finally:
            log.info("%s stopping", self.service)
            await self.http.stop()
            for hook in reversed(self._on_stop):
                await hook(self.runtime)
            await self.runtime.db.close()
            self.tracer_provider.shutdown()

    async def _metrics(self) -> Response:
        """Prometheus text: this process's counters, and the backlog read now."""
        if self.works and self.runtime.pool is not None:
            try:
                async with self.runtime.db.connection(timeout=2) as conn:
                    queued = await work.backlog(conn, self.service)
                metrics.BACKLOG.labels(self.service).set(queued)
            except Exception:  # a scrape must answer even while Postgres does not
                log.warning("backlog not read for /metrics", exc_info=True)
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    async def _readiness(self) -> dict[str, object]:
        checks: dict[str, object] = {"kafka": await self.broker.ping(timeout=2.0)}
        checks["started"] = self._started or "starting: consumers and workers not yet running"
        try:
            async with self.runtime.db.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")
            checks["postgres"] = True
        except Exception as exc:
            checks["postgres"] = f"{type(exc).__name__}: {exc}"
        return checks

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT; in-flight messages finish before the broker closes."""
        setup_logging(self.settings.telemetry, self.service)
        logging.getLogger(f"lorag.{self.service}.broker").setLevel(logging.WARNING)

        deadline = StopDeadline(self.service, self.settings.stop_timeout_s)

        async def after_startup() -> None:
            for hook in self._after_start:
                await hook(self.runtime)
            settle_heap()
            self._started = True

        async def shutting_down() -> None:  # before the consumers and the producer close
            deadline.arm(asyncio.get_running_loop())
            for hook in reversed(self._before_broker_stops):
                await hook(self.runtime)
            for delivery in self._deliveries:
                await delivery.drain()

        app = FastStream(
            self.broker, lifespan=self._lifespan, after_startup=[after_startup],
            on_shutdown=[shutting_down], logger=log,
        )  # fmt: skip
        await app.run()
