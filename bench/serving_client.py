"""The serving bench's HTTP clients, in a process of their own, as real clients are.

`python -m bench.serving_client BASE_URL` reads one JSON command per line on stdin and answers
one JSON line on stdout; it imports httpx only, so it starts fast and shares no GIL with the
server. Every figure of `bench serving` times its requests here, the baseline (one request at a
time) and the batch (8 clients) alike, so their ratio compares the same client path.

Commands:
    {"op": "chats", "clients": [[[model, question, max_tokens], ...], ...], "ttft": bool}
        each client runs its requests one after another, the clients concurrently;
        answers {"tokens", "seconds", "ttfts_ms"} (ttfts_ms: first text of each request)
    {"op": "one_token", "models": [model, ...]}
        one 1-token request per model, one after another; answers {"ms": [...]}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx


async def chat(http: httpx.AsyncClient, model: str, question: str, max_tokens: int,
               ttfts: list[float] | None) -> int:  # fmt: skip
    """One streamed chat request; returns its completion tokens (records its TTFT)."""
    body = {"model": model, "messages": [{"role": "user", "content": question}],
            "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    started, tokens, first = time.perf_counter(), 0, True
    async with http.stream("POST", "/v1/chat/completions", json=body) as reply:
        reply.raise_for_status()
        async for line in reply.aiter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            data = json.loads(line[5:])
            if first and data["choices"] and data["choices"][0]["delta"].get("content"):
                first = False
                if ttfts is not None:
                    ttfts.append((time.perf_counter() - started) * 1000)
            if data.get("usage"):
                tokens = data["usage"]["completion_tokens"]
    return tokens


async def chats(http: httpx.AsyncClient, clients: list[list[list[Any]]],
                ttft: bool) -> dict[str, Any]:  # fmt: skip
    """Each client's requests in turn, the clients at once; tokens, wall seconds, TTFTs."""
    ttfts: list[float] = []

    async def client(jobs: list[list[Any]]) -> int:
        done = 0
        for model, question, max_tokens in jobs:
            done += await chat(http, model, question, max_tokens, ttfts if ttft else None)
        return done

    started = time.perf_counter()
    tokens = sum(await asyncio.gather(*(client(jobs) for jobs in clients)))
    return {"tokens": tokens, "seconds": time.perf_counter() - started, "ttfts_ms": ttfts}


async def one_token(http: httpx.AsyncClient, models: list[str]) -> dict[str, Any]:
    """1-token requests, one after another; each one's wall time in ms."""
    times = []
    for model in models:
        started = time.perf_counter()
        body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
        reply = await http.post("/v1/chat/completions", json=body)
        reply.raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return {"ms": times}


async def serve(base_url: str) -> None:
    """Answer commands from stdin until it closes."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, timeout=300, limits=limits) as http:
        for line in sys.stdin:  # blocking is fine: nothing else runs here between commands
            command = json.loads(line)
            if command["op"] == "chats":
                answer = await chats(http, command["clients"], command.get("ttft", False))
            elif command["op"] == "one_token":
                answer = await one_token(http, command["models"])
            else:
                answer = {"error": f"unknown op {command['op']!r}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
