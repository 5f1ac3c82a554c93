"""The OpenAI-compatible API: `/v1/chat/completions` (optionally streamed) and `/v1/models`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from lorag_lora.adapters import registry
from lorag_lora.adapters.artifacts import AdapterCorrupted
from lorag_lora.adapters.registry import AdapterNotFound
from lorag_lora.domain.registry import BadReference
from lorag_lora.finetune_api import mount_fine_tuning
from lorag_lora.serving.engine import AdapterBaseMismatch, Choice, Engine

ERRORS: dict[type[Exception], tuple[int, str]] = {
    BadReference: (400, "invalid_model"),
    AdapterNotFound: (404, "model_not_found"),
    AdapterBaseMismatch: (409, "ADAPTER_BASE_MISMATCH"),
    AdapterCorrupted: (502, "ADAPTER_CORRUPTED"),
}


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat request lorag honours; unknown fields are ignored."""

    model: str = Field(description="base, NAME, NAME:VERSION or NAME@ALIAS.")
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0, le=2, description="0: greedy, deterministic.")
    top_p: float = Field(default=1.0, gt=0, le=1)
    stream: bool = False


def create_app(
    engine_of: Callable[[], Engine | None],
    default_max_tokens: int,
    fine_tune_models: frozenset[str] = frozenset(),
) -> FastAPI:
    """The API over whatever engine `engine_of` returns (None while the base model loads)."""
    app = FastAPI(title="lorag lora-service inference", version="1")
    mount_fine_tuning(app, fine_tune_models)  # /v1/files, /v1/fine_tuning/jobs

    def engine() -> Engine:
        found = engine_of()
        if found is None:
            raise _Unavailable()
        return found

    @app.exception_handler(_Unavailable)
    async def unavailable(_: Request, __: Exception) -> JSONResponse:
        return _error(503, "model_loading", "the base model is still loading; retry shortly")

    for kind, (status, code) in ERRORS.items():
        app.add_exception_handler(kind, _handler(status, code))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        eng = engine()
        async with eng.pool.connection() as conn:
            rows = await registry.list_adapters(conn)
        ids = ["base"] + [
            ident
            for r in rows
            for ident in (
                f"{r['name']}:{r['version']}",
                *(f"{r['name']}@{a}" for a in r["aliases"]),
            )
        ]
        owned = {"object": "model", "created": int(time.time()), "owned_by": "lorag"}
        return {"object": "list", "data": [{"id": i, **owned} for i in ids]}

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> dict[str, Any] | EventSourceResponse:
        eng = engine()
        choice = await eng.choose(body.model)
        messages = [m.model_dump() for m in body.messages]
        limit = body.max_completion_tokens or body.max_tokens or default_max_tokens
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if body.stream:
            return EventSourceResponse(_chunks(eng, choice, body, messages, limit, ident))
        done = await asyncio.to_thread(eng.complete, choice, messages, limit, body.temperature,
                                       body.top_p)  # fmt: skip
        return {
            "id": ident, "object": "chat.completion", "created": int(time.time()),
            "model": choice.label,
            "choices": [{"index": 0, "finish_reason": done.finish_reason,
                         "message": {"role": "assistant", "content": done.text}}],
            "usage": {"prompt_tokens": done.prompt_tokens,
                      "completion_tokens": done.completion_tokens,
                      "total_tokens": done.prompt_tokens + done.completion_tokens},
        }  # fmt: skip

    return app


async def _chunks(eng: Engine, choice: Choice, body: ChatRequest, messages: list[dict[str, str]],
                  limit: int, ident: str) -> AsyncIterator[str]:  # fmt: skip
    pieces = eng.stream(choice, messages, limit, body.temperature, body.top_p)
    head = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()),
            "model": choice.label}  # fmt: skip
    yield json.dumps({**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        yield json.dumps({**head, "choices": [{"index": 0, "delta": {"content": piece}}]})
    yield json.dumps({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    yield "[DONE]"


class _Unavailable(Exception):
    pass


def _handler(status: int, code: str) -> Any:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return _error(status, code, str(exc))

    return handle


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": "invalid_request_error", "code": code}}, status
    )
