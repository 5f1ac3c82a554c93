"""Boundaries (issue 11): what reaching a service over HTTP costs a person.

- A KB query through the gateway against the same query sent to the rag-service's API directly
  (the extra hop: token check, ownership, forwarding).
- A warm `lorag kb query` (a fresh CLI process, as a person runs it) against the rag-service's
  own query time.
- The gateway's peak RSS after the queries and every console asset: it loads no model.

The knowledge base is built by the rag-service from the demo corpus, submitted through the
gateway like any user's job.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from pathlib import Path

import httpx

from bench.report import Figure, at_most, figure, percentile
from lorag_api.rag import Query, RagClient
from lorag_core.settings import Settings
from tests.support.gateway import start_gateway
from tests.support.processes import start_service

CORPUS = Path(__file__).resolve().parents[1] / "deploy" / "demo" / "corpus"
QUESTION = "When does the on-call rotation change?"
QUERIES, CLI_RUNS = 300, 8
CONSOLE = (
    "/",
    "/static/console.js",
    "/static/api.js",
    "/static/catalog.js",
    "/static/jobs.js",
    "/static/newjob.js",
    "/static/params.js",
    "/static/console.css",
    "/api/openapi.json",
    "/api/training-types",
)


async def timed(calls: int, call) -> list[float]:  # type: ignore[no-untyped-def]
    """Milliseconds of each of `calls` sequential awaits of call()."""
    out = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        out.append((time.perf_counter() - started) * 1000)
    return out


async def run(settings: Settings, work: Path) -> list[Figure]:
    logs = work / "boundaries-logs"
    rag = start_service(
        "lorag_rag", logs, LORAG_CHROMA_PATH=str(work / "boundaries-chroma"), HF_HUB_OFFLINE="1"
    )
    gateway = start_gateway(logs, rag)
    try:
        kb = f"bench-{uuid.uuid4().hex[:6]}"
        built = await asyncio.to_thread(
            gateway.cli,
            "submit",
            "EXTERNAL_RAG",
            "--dataset",
            str(CORPUS),
            "--param",
            f"kb={kb}",
            "--wait",
            "--json",
            "--timeout",
            "300",
            timeout=400,
        )
        assert built.returncode == 0, built.stderr
        direct = RagClient(f"http://127.0.0.1:{rag.port}", settings.service_secret)
        body = Query(question=QUESTION, top_k=5)
        token = gateway.token("default")
        async with httpx.AsyncClient(
            base_url=gateway.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:

            async def through_gateway() -> None:
                (await http.post(f"/api/kbs/{kb}/query", json=body.model_dump())).raise_for_status()

            await timed(20, lambda: direct.query("default", kb, body))  # warm both paths
            await timed(20, through_gateway)
            # Interleaved rounds, so drift in the machine's load hits both paths alike.
            own: list[float] = []
            hop: list[float] = []
            for _ in range(QUERIES // 50):
                own += await timed(50, lambda: direct.query("default", kb, body))
                hop += await timed(50, through_gateway)
            for path in CONSOLE:
                (await http.get(path)).raise_for_status()
        await direct.close()
        cli: list[float] = []
        for _ in range(CLI_RUNS + 1):  # the first run warms the OS's file cache
            started = time.perf_counter()
            done = await asyncio.to_thread(gateway.cli, "kb", "query", kb, QUESTION, "--json")
            cli.append(time.perf_counter() - started)
            assert done.returncode == 0 and json.loads(done.stdout)["hits"], done.stderr
        cli = cli[1:]
        own_p50, hop_p50 = percentile(own, 0.5), percentile(hop, 0.5)
        peak = gateway.process.peak_rss_bytes()
    finally:
        gateway.process.stop()
        rag.stop()
    return [
        # Issue 11: "the extra hop adds at most 5 ms at p50".
        figure(
            "boundaries.gateway_hop_p50",
            hop_p50 - own_p50,
            "ms",
            baseline=own_p50,
            baseline_is="the rag-service's API called directly, p50 ms",
            target=at_most(5, issue=11),
            n=len(hop),
            gateway_p50_ms=round(hop_p50, 2),
            gateway_p99_ms=round(percentile(hop, 0.99), 2),
            direct_p99_ms=round(percentile(own, 0.99), 2),
        ),
        # Issue 11: "A warm `lorag kb query` answers in under 1 s".
        figure(
            "boundaries.cli_kb_query",
            statistics.median(cli),
            "s",
            baseline=own_p50 / 1000,
            baseline_is="the rag-service's own query time, p50 s",
            target=at_most(1.0, issue=11),
            n=len(cli),
            max_s=round(max(cli), 3),
        ),
        # Issue 11: "gateway peak RSS (target: under 300 MiB)".
        figure(
            "boundaries.gateway_peak_rss",
            peak / 2**20,
            "MiB",
            target=at_most(300, issue=11),
            queries=len(hop) + 40 + CLI_RUNS + 1,
        ),
    ]
