"""Gateway: API latency (submit, list) under concurrent clients, and SSE fan-out delay.

Baselines in the same run: a bare FastAPI hello endpoint under the same clients, and the SSE
delay with a single watcher.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from psycopg.rows import dict_row

from bench.report import Figure, figure, percentile
from lorag_core.contracts import DatasetRef, JobProgress, JobRequested
from lorag_core.db import jobs as store
from lorag_core.db import tokens
from lorag_core.domain.job_state import JobState
from lorag_core.settings import Settings
from lorag_gateway.config import GatewaySettings
from lorag_local.stack import free_port
from tests.integration.test_gateway_api import wait_for_api
from tests.support.processes import start_service

CLIENTS, REQUESTS = 8, 50
WATCHERS, EVENTS = 100, 20


def latencies(
    name: str, values: list[float], baseline: list[float], baseline_is: str, **extra: Any
) -> list[Figure]:
    """p50 and p99 of `values` against the same quantiles of `baseline`.

    Issue 7 asks for these figures without a target: they inform.
    """
    return [
        figure(f"gateway.{name}.{label}_ms", percentile(values, q), "ms",
               baseline=percentile(baseline, q), baseline_is=baseline_is, target=None,
               n=len(values), **extra)
        for q, label in ((0.5, "p50"), (0.99, "p99"))
    ]  # fmt: skip


async def hammer(base: str, method: str, path: str, token: str, body: Any = None) -> list[float]:
    """CLIENTS concurrent clients, REQUESTS each; per-request latency in ms."""

    async def one_client() -> list[float]:
        out = []
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            for _ in range(REQUESTS):
                started = time.perf_counter()
                r = await c.request(method, path, json=body)
                out.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()
        return out

    return [
        v for part in await asyncio.gather(*(one_client() for _ in range(CLIENTS))) for v in part
    ]


def hello_server() -> tuple[str, uvicorn.Server]:
    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


Send = Callable[[psycopg.AsyncConnection[Any], JobProgress], Awaitable[None]]


async def commit_progress(conn: psycopg.AsyncConnection[Any], event: JobProgress) -> None:
    """The event straight into Postgres, as the tracker would write it."""
    async with conn.transaction():
        await store.apply_progress(conn, [event])


def publish_progress(producer: AIOKafkaProducer) -> Send:
    """The event on Kafka's job.progress topic: the tracker folds it, the gateway streams it."""

    async def send(_conn: psycopg.AsyncConnection[Any], event: JobProgress) -> None:
        await producer.send_and_wait(event.topic, event.to_bytes(), key=event.job_id.encode())

    return send


async def fan_out(
    settings: Settings, base: str, token: str, watchers: int, send: Send = commit_progress
) -> list[float]:
    """Delay from a progress event sent (committed, or published) to each of `watchers` streams."""
    job_id = f"job-bench{uuid.uuid4().hex[:8]}"
    request = JobRequested(job_id=job_id, training_type="EXTERNAL_RAG", owner="bench",
                           datasets=(DatasetRef(uri="s3://lorag-datasets/bench/"),))  # fmt: skip
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        await store.record_requested(conn, request)
        sent: dict[int, float] = {}
        delays: list[float] = []
        ready = asyncio.Event()
        connected = 0

        async def watch() -> None:
            nonlocal connected
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c, \
                    c.stream("GET", f"/api/jobs/{job_id}/events") as r:  # fmt: skip
                connected += 1
                if connected == watchers:
                    ready.set()
                event = ""
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event == "progress":
                        seq = json.loads(line[5:])["seq"]
                        if seq in sent:
                            delays.append((time.perf_counter() - sent[seq]) * 1000)
                    elif event == "end":
                        return

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        async with asyncio.timeout(60):
            await ready.wait()
        await asyncio.sleep(0.5)
        for seq in range(1, EVENTS + 1):
            state = JobState.SUCCEEDED if seq == EVENTS else JobState.RUNNING
            event = JobProgress(
                job_id=job_id, seq=seq, state=state, producer="bench", percent=100 * seq / EVENTS
            )
            sent[seq] = time.perf_counter()
            await send(conn, event)
            await asyncio.sleep(0.25)
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
    return delays


async def from_kafka(settings: Settings, base: str, token: str, work: Path) -> list[float]:
    """One watcher's delay from a job.progress event published on Kafka, through the tracker."""
    tracker = start_service("lorag_migration", work / "logs")  # it hosts the job tracker
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        return await fan_out(settings, base, token, 1, publish_progress(producer))
    finally:
        await producer.stop()
        tracker.stop()


async def run(settings: Settings, work: Path) -> list[Figure]:
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        token = str((await tokens.create(conn, "bench", "bench"))["token"])
    port = free_port()
    # One owner makes every request: the rate limit would measure itself, not the API.
    service = start_service(
        "lorag_gateway", work / "logs", LORAG_GATEWAY_PORT=str(port),
        LORAG_GATEWAY_RATE_LIMIT_PER_S="1000000", LORAG_GATEWAY_RATE_LIMIT_BURST="1000000",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    hello, hello_srv = hello_server()
    try:
        await asyncio.to_thread(wait_for_api, base, service)
        body = {
            "training_type": "EXTERNAL_RAG",
            "datasets": ["s3://lorag-datasets/uploads/bench/ds-b/"],
        }
        shape = {"clients": CLIENTS, "requests_each": REQUESTS}
        wake = {"woken_by": "NOTIFY", "fallback_poll_ms": GatewaySettings().poll_s * 1000}
        hello_ms = await hammer(hello, "GET", "/hello", token)
        listed = await hammer(base, "GET", "/api/jobs?limit=50", token)
        submitted = await hammer(base, "POST", "/api/jobs", token, body)
        one = await fan_out(settings, base, token, 1)
        via_kafka = await from_kafka(settings, base, token, work)
        many = await fan_out(settings, base, token, WATCHERS)
        bare = "bare FastAPI hello endpoint, same clients"
        return [
            *latencies("list_jobs", listed, hello_ms, bare, **shape),
            *latencies("submit_job", submitted, hello_ms, bare, **shape),
            *latencies(f"sse_{WATCHERS}_watchers", many, one, "the same with 1 watcher", **wake),
            # Issue 17: SSE from a progress event on Kafka to the event at a client (no target).
            *latencies("sse_from_kafka", via_kafka, one,
                       "1 watcher, the event committed to Postgres directly", **wake),
        ]  # fmt: skip
    finally:
        hello_srv.should_exit = True
        service.stop()
