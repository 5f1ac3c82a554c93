"""A tiny OpenAI-compatible chat server for tests: it echoes the context it was given."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from lorag_local.stack import free_port


def make_app(seen: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any], request: Request) -> dict[str, Any]:
        # the owner a lorag service called for, so a test can see it was passed on
        seen.append({**body, "x_lorag_owner": request.headers.get("x-lorag-owner")})
        user = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        return {
            "id": f"stub-{len(seen)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": f"STUB ANSWER [1]\n{user}"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    return app


@contextmanager
def openai_stub() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Serve the stub on a free port; yields its base URL (…/v1) and the requests it saw."""
    seen: list[dict[str, Any]] = []
    port = free_port()
    config = uvicorn.Config(make_app(seen), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        server.should_exit = True
        thread.join(timeout=5)
