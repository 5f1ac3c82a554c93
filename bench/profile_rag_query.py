"""Where one top-5 query's time goes through the rag-service's API.

`python -m bench.profile_rag_query`: a private stack, the rag-service as `bench rag` starts it, a
small KB it builds through a job; then p50s (ms) of the same service's pieces, each alone: the
HTTP hop (GET /health), the token and owner checks (GET /v1/kbs/{kb}: the checks and the KB
lookup, no query), the KB lookup in Postgres in this process (pool connection, SELECT, return),
a hand-off to a thread, and the whole query through the API. A profile, not a judged figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from bench.rag import QUESTIONS, STDLIB_PARAMS, corpus, ingest, upload
from bench.report import cpu_seconds
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from tests.support.processes import start_service

N = 300
SPY = Path(sys.executable).parent / "py-spy"  # pip install py-spy into the venv to use it


async def p50(fn: Callable[[int], Awaitable[Any]], pid: int, n: int = N) -> tuple[float, float]:
    """p50 wall ms of fn, and the CPU ms per call that process `pid` spent (load-proof)."""
    out = []
    for i in range(20):
        await fn(i)
    cpu = cpu_seconds(pid)
    for i in range(n):
        started = time.perf_counter()
        await fn(i)
        out.append((time.perf_counter() - started) * 1000)
    return sorted(out)[len(out) // 2], (cpu_seconds(pid) - cpu) * 1000 / n


async def main_async(spy: Path | None, stdlib: bool) -> None:
    import httpx

    from lorag_core.db.pool import open_pool
    from lorag_rag import retrieval

    settings, work = Settings(), Path(tempfile.mkdtemp(prefix="lorag-profile-"))
    env = {"LORAG_CHROMA_PATH": str(work / "chroma")}
    tracker = await asyncio.to_thread(start_service, "lorag_migration", work / "logs")
    launcher = None
    if spy is not None:  # py-spy samples the service's threads while they work (no --idle)
        launcher = spy.with_suffix(".sh")
        launcher.write_text(
            f"#!/bin/sh\nexec {SPY} record -r 250 --threads --format raw -o {spy} "
            f'-- {sys.executable} "$@"\n'
        )
        launcher.chmod(0o755)
    rag = await asyncio.to_thread(
        start_service, "lorag_rag", work / "logs", python=launcher, ready_timeout=180, **env
    )
    service_pid = rag.process.pid
    if launcher is not None:
        service_pid = psutil.Process(rag.process.pid).children()[0].pid
    rows = [f"Fact {i}: {QUESTIONS[i % 14]} is answered in module {i}." for i in range(300)]
    files = {"data.jsonl": "\n".join(json.dumps({"text": r}) for r in rows).encode()}
    params: dict[str, Any] = {}
    if stdlib:  # the KB `bench rag` queries: about 10,000 chunks of docstrings
        files, params = await asyncio.to_thread(corpus, 10**9), STDLIB_PARAMS
    try:
        uri = upload(ObjectStore.from_settings(settings.s3), files)
        kb = f"profile-{uuid.uuid4().hex[:6]}"
        _, summary, _ = await ingest(settings, uri, kb, service_pid, **params)
        print(f"KB of {summary['chunks']} chunks", flush=True)
        token = settings.service_secret
        headers = {"Authorization": f"Bearer {token}", "X-Lorag-Owner": "default"}
        pool = await open_pool(settings.postgres_dsn)
        async with httpx.AsyncClient(base_url=rag.url, headers=headers) as client:

            async def health(i: int) -> None:
                (await client.get("/health")).raise_for_status()

            async def show(i: int) -> None:
                (await client.get(f"/v1/kbs/{kb}")).raise_for_status()

            async def lookup(i: int) -> None:
                async with pool.connection() as conn:
                    await retrieval.live_kb(conn, kb, "default")

            async def handoff(i: int) -> None:
                await asyncio.to_thread(int)

            async def query(i: int) -> None:
                body = {"question": QUESTIONS[i % len(QUESTIONS)], "top_k": 5}
                (await client.post(f"/v1/kbs/{kb}/query", json=body)).raise_for_status()

            from lorag_rag.adapters.chroma_store import ChromaStore
            from lorag_rag.adapters.embedder import EmbedderCache, QueryThreads
            from lorag_rag.config import ChromaSettings, RagSettings
            from lorag_rag.deps import RagDeps

            deps = RagDeps(
                RagSettings(), EmbedderCache(), ChromaStore(ChromaSettings(path=work / "chroma"))
            )
            async with pool.connection() as conn:
                row = await retrieval.live_kb(conn, kb, "default")
            threads = QueryThreads()

            async def search(i: int) -> None:
                await threads.run(retrieval.search, deps, row, QUESTIONS[i % len(QUESTIONS)], 5)

            def encode(i: int) -> None:
                deps.embedders.get(row["embedding_model"]).encode_one(QUESTIONS[i % len(QUESTIONS)])

            async def encode_on_thread(i: int) -> None:
                await threads.run(encode, i)

            in_torch = EmbedderCache(query_runtime="torch").get(row["embedding_model"])

            async def encode_in_torch(i: int) -> None:
                await threads.run(in_torch.encode_one, QUESTIONS[i % len(QUESTIONS)])

            vectors = [deps.embedders.get(row["embedding_model"]).encode_one(q) for q in QUESTIONS]

            async def nearest(i: int) -> None:
                await threads.run(
                    deps.store.query, kb, vectors[i % len(vectors)], 5, int(row["version"])
                )

            here, there = os.getpid(), service_pid
            for label, fn, pid in (
                ("search on a query thread in this process", search, here),
                ("encode_one on a query thread in this process", encode_on_thread, here),
                ("the same in torch (LORAG_RAG_QUERY_RUNTIME=torch)", encode_in_torch, here),
                ("Chroma top 5 on a query thread in this process", nearest, here),
                ("GET /health (HTTP hop)", health, there),
                ("GET /v1/kbs/{kb} (token, owner, KB lookup)", show, there),
                ("KB lookup in this process (pool + SELECT)", lookup, here),
                ("hand-off to a thread and back", handoff, here),
                ("POST /v1/kbs/{kb}/query (top 5)", query, there),
                ("GET /health again", health, there),
            ):
                wall, cpu = await p50(fn, pid)
                print(f"{label:<48} p50 {wall:7.2f} ms, CPU {cpu:6.2f} ms/call", flush=True)
        await pool.close()
    finally:
        if launcher is not None:
            rag.process.send_signal(signal.SIGINT)
            await asyncio.to_thread(rag.process.wait, 60)
            if psutil.pid_exists(service_pid):
                os.kill(service_pid, signal.SIGTERM)
        await asyncio.to_thread(rag.stop)
        await asyncio.to_thread(tracker.stop)


def main() -> None:
    from bench.__main__ import servers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m bench.profile_rag_query")
    parser.add_argument("--py-spy", type=Path, dest="spy", help="raw samples of the service")
    parser.add_argument(
        "--stdlib", action="store_true", help="query the docstrings KB of `bench rag` (10k chunks)"
    )
    args = parser.parse_args()
    with servers():
        asyncio.run(main_async(args.spy if args.spy and SPY.exists() else None, args.stdlib))


if __name__ == "__main__":
    main()
