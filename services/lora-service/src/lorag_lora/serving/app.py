"""The OpenAI-compatible API: `/v1/chat/completions`, `/v1/completions` (both optionally
streamed) and `/v1/models`, over the continuous-batching engine."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from lorag_lora.adapters import registry
from lorag_lora.adapters.artifacts import AdapterCorrupted
from lorag_lora.adapters.registry import AdapterNotFound
from lorag_lora.domain.registry import BadReference
from lorag_lora.finetune_api import mount_fine_tuning
from lorag_lora.openai_keys import KeyStore, Owner
from lorag_lora.serving import errors
from lorag_lora.serving import metrics as serving_metrics
from lorag_lora.serving.engine import AdapterBaseMismatch, Choice, ContextTooLong, Engine
from lorag_lora.serving.errors import OpenAIError
from lorag_lora.serving.handoff import Delta, Done, Failed, Generation, Inbox
from lorag_lora.serving.sampling import Sampling
from lorag_lora.serving.scheduler import QueueFull
from lorag_lora.serving.schemas import (
    ChatCompletion,
    ChatRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
    Sampled,
    TextCompletion,
)

MAPPED: dict[type[Exception], tuple[int, str]] = {
    BadReference: (400, "invalid_model"),
    ContextTooLong: (400, "context_length_exceeded"),
    AdapterNotFound: (404, "model_not_found"),
    AdapterBaseMismatch: (409, "ADAPTER_BASE_MISMATCH"),
    AdapterCorrupted: (502, "ADAPTER_CORRUPTED"),
}
DISCONNECT_POLL_S = 0.2


def create_app(engine_of: Callable[[], Engine | None], default_max_tokens: int,
               keys: KeyStore | None = None, retry_after_s: int = 1,
               fine_tune_models: frozenset[str] = frozenset()) -> FastAPI:  # fmt: skip
    """The API over whatever engine `engine_of` returns (None while the base model loads);
    without `keys`, every call is keyless. `fine_tune_models` may be fine-tuned."""
    app = FastAPI(title="lorag lora-service inference", version="1")
    app.state.api_keys = keys or KeyStore(None, {}, required=False, pool_of=lambda: None)
    errors.install(app, MAPPED)
    mount_fine_tuning(app, fine_tune_models)  # /v1/files, /v1/fine_tuning/jobs

    def engine() -> Engine:
        found = engine_of()
        if found is None:
            raise OpenAIError(503, "the base model is still loading; retry shortly",
                              code="model_loading", headers={"Retry-After": "2"})  # fmt: skip
        return found

    def start(eng: Engine, choice: Choice, prompts: list[list[int]],
              body: Sampled, limit: int) -> tuple[list[Generation], Inbox]:  # fmt: skip
        """Queue one generation per prompt; their events arrive in one inbox, by index."""
        sampling = Sampling(limit, body.temperature, body.top_p, body.seed, body.stops())
        inbox = eng.scheduler.inbox(live=bool(body.stream))
        started: list[Generation] = []
        try:
            for index, ids in enumerate(prompts):
                started.append(eng.submit(choice, ids, sampling, inbox, index))
        except QueueFull as exc:
            for gen in started:
                gen.cancel()
            raise OpenAIError(429, str(exc), "requests", "rate_limit_exceeded",
                              headers={"Retry-After": str(retry_after_s)}) from None  # fmt: skip
        eng.touch(choice)
        return started, inbox

    @app.get("/v1/models", response_model=ModelList, summary="Models this caller may use")
    async def models(owner: Owner) -> ModelList:
        eng = engine()
        async with eng.pool.connection() as conn:
            rows = await registry.list_adapters(conn, owner=owner, kinds=("adapter", "model"))
        return ModelList(data=[_base_card(eng), *(c for r in rows for c in _cards(eng, r))])

    @app.get("/v1/models/{model:path}", response_model=ModelCard, summary="One model")
    async def model(model: str, owner: Owner) -> ModelCard:
        eng = engine()
        choice = await eng.choose(model, owner)
        if choice.kind == "base":
            return _base_card(eng)
        async with eng.pool.connection() as conn:
            name, _, version = choice.label.partition(":")
            row = await registry.get(conn, name, int(version))
        assert row is not None
        return ModelCard(id=model, created=_created(row), owned_by=row["owner"] or "lorag",
                         kind=row["kind"], parent=_parent(eng, row))  # fmt: skip

    @app.post("/v1/chat/completions", response_model=ChatCompletion,
              summary="A chat answer (streamed with stream=true)")  # fmt: skip
    async def chat(body: ChatRequest, owner: Owner, request: Request) -> Any:
        eng, started = engine(), time.perf_counter()
        messages = [_message(i, m) for i, m in enumerate(body.messages)]
        choice = await eng.choose(body.model, owner)
        limit = body.max_completion_tokens or body.max_tokens or default_max_tokens
        gens, inbox = start(eng, choice, [eng.chat_ids(choice, messages)], body, limit)
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        if body.stream:
            return EventSourceResponse(_stream(gens, inbox, body, ident, choice.label, chat=True))
        (text, done), = await _collect(gens, inbox, request)  # fmt: skip
        _record(choice.label, False, started, [done])
        return JSONResponse({
            "id": ident, "object": "chat.completion", "created": int(time.time()),
            "model": choice.label,
            "choices": [{"index": 0, "finish_reason": done.finish_reason, "logprobs": None,
                         "message": {"role": "assistant", "content": text}}],
            "usage": _usage([done]),
        })  # fmt: skip

    @app.post(
        "/v1/completions",
        response_model=TextCompletion,
        summary="Text completions of one or more prompts (streamed with stream=true)",
    )
    async def completions(body: CompletionRequest, owner: Owner, request: Request) -> Any:
        eng, started = engine(), time.perf_counter()
        if body.echo:
            raise OpenAIError(400, "echo is not supported", param="echo", code="unsupported")
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts:
            raise OpenAIError(400, "prompt: give at least one prompt", param="prompt")
        choice = await eng.choose(body.model, owner)
        limit = body.max_tokens or default_max_tokens
        ids = [eng.text_ids(choice, p) for p in prompts]
        gens, inbox = start(eng, choice, ids, body, limit)
        ident = f"cmpl-{uuid.uuid4().hex[:24]}"
        if body.stream:
            return EventSourceResponse(_stream(gens, inbox, body, ident, choice.label, chat=False))
        results = await _collect(gens, inbox, request)
        _record(choice.label, False, started, [done for _, done in results])
        return JSONResponse({
            "id": ident, "object": "text_completion", "created": int(time.time()),
            "model": choice.label,
            "choices": [{"index": i, "text": text, "finish_reason": done.finish_reason,
                         "logprobs": None} for i, (text, done) in enumerate(results)],
            "usage": _usage([done for _, done in results]),
        })  # fmt: skip

    return app


def _message(index: int, message: Any) -> dict[str, str]:
    """A message as the chat template takes it: text content; developer is the system role."""
    content = message.content
    if isinstance(content, list):
        texts = []
        for part in content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                where = f"messages[{index}].content"
                raise OpenAIError(
                    400, f"{where}: only text parts are supported (got {part.get('type')!r})",
                    param=where, code="unsupported_content",
                )  # fmt: skip
            texts.append(part["text"])
        content = "".join(texts)
    role = "system" if message.role == "developer" else message.role
    return {"role": role, "content": content or ""}


async def _collect(gens: list[Generation], inbox: Inbox,
                   request: Request) -> list[tuple[str, Done]]:  # fmt: skip
    """Wait for whole answers; a client that goes away cancels them (freeing their slots)."""
    texts: list[list[str]] = [[] for _ in gens]
    dones: dict[int, Done] = {}
    try:
        while len(dones) < len(gens):
            try:
                async with asyncio.timeout(DISCONNECT_POLL_S):  # not wait_for: see wait_woken
                    events = await inbox.take()
            except TimeoutError:
                if await request.is_disconnected():
                    raise OpenAIError(400, "the client disconnected",
                                      code="client_disconnected") from None  # fmt: skip
                continue
            for index, event in events:
                if isinstance(event, Delta):
                    texts[index].append(event.text)
                elif isinstance(event, Failed):
                    raise event.error
                else:
                    dones[index] = event
        return [("".join(texts[i]), dones[i]) for i in range(len(gens))]
    finally:
        for gen in gens:
            gen.cancel()  # no-op for finished ones


async def _stream(gens: list[Generation], inbox: Inbox, body: Sampled, ident: str, label: str,
                  chat: bool) -> AsyncIterator[bytes]:  # fmt: skip
    """Server-sent chunks as OpenAI sends them; a cancelled stream (disconnect) frees slots.

    The text that arrived together (see handoff.py) goes out as one chunk per choice, and all
    the chunks of one wake-up in one write: per-chunk work, not the model, bounded a stream.
    """
    kind = "chat.completion.chunk" if chat else "text_completion"
    head = {"id": ident, "object": kind, "created": int(time.time()), "model": label}
    started = time.perf_counter()
    usage = body.stream_options is not None and body.stream_options.include_usage
    extra = {"usage": None} if usage else {}

    def chunk(index: int, piece: str | None, finish: str | None) -> bytes:
        if chat:
            delta = {"role": "assistant", "content": ""} if piece is None else {"content": piece}
            if finish:
                delta = {}
            choice: dict[str, Any] = {"index": index, "delta": delta, "logprobs": None,
                                      "finish_reason": finish}  # fmt: skip
        else:
            choice = {"index": index, "text": piece or "", "logprobs": None,
                      "finish_reason": finish}  # fmt: skip
        return _frame({**head, "choices": [choice], **extra})

    dones: list[Done] = []
    try:
        if chat:
            yield b"".join(chunk(i, None, None) for i in range(len(gens)))
        while len(dones) < len(gens):
            texts: dict[int, list[str]] = {}
            ends: list[tuple[int, Done | Failed]] = []
            for index, event in await inbox.take():
                if isinstance(event, Delta):
                    texts.setdefault(index, []).append(event.text)
                else:
                    ends.append((index, event))  # after all of its choice's text
            frames = [chunk(i, "".join(t), None) for i, t in texts.items()]
            for index, end in ends:
                if isinstance(end, Failed):
                    error = {
                        "message": f"generation failed: {type(end.error).__name__}",
                        "type": "server_error",
                        "param": None,
                        "code": "internal_error",
                    }
                    yield b"".join([*frames, _frame({"error": error})])
                    return
                dones.append(end)
                frames.append(chunk(index, None, end.finish_reason))
            if len(dones) == len(gens):
                _record(label, True, started, dones)
                if usage:
                    frames.append(_frame({**head, "choices": [], "usage": _usage(dones)}))
                frames.append(b"data: [DONE]\r\n\r\n")
            yield b"".join(frames)
    finally:
        for gen in gens:
            gen.cancel()  # no-op for finished ones; a disconnect ends here too


def _frame(payload: dict[str, Any]) -> bytes:
    """One server-sent event (JSON has no raw line breaks, so it is one data line)."""
    return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


def _record(label: str, stream: bool, started: float, dones: list[Done]) -> None:
    """An answered request's latency and tokens, for /metrics."""
    serving_metrics.request_done(label, stream, time.perf_counter() - started)
    serving_metrics.tokens(sum(d.prompt_tokens for d in dones),
                           sum(d.completion_tokens for d in dones))  # fmt: skip


def _usage(dones: list[Done]) -> dict[str, int]:
    prompt = sum(d.prompt_tokens for d in dones)
    completion = sum(d.completion_tokens for d in dones)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def _base_card(eng: Engine) -> ModelCard:
    return ModelCard(id="base", created=0, owned_by="lorag", kind="base", parent=eng.base.name)


def _created(row: dict[str, Any]) -> int:
    stamp = row.get("ready_at") or row.get("created_at")
    return int(stamp.timestamp()) if stamp else 0


def _parent(eng: Engine, row: dict[str, Any]) -> str | None:
    return str(row["base_model"]) if row["base_model"] else None


def _cards(eng: Engine, row: dict[str, Any]) -> list[ModelCard]:
    """Every id a version answers to: NAME:VERSION and NAME@ALIAS (NAME is NAME@latest)."""
    ids = [f"{row['name']}:{row['version']}", *(f"{row['name']}@{a}" for a in row["aliases"])]
    if "latest" in row["aliases"]:
        ids.append(row["name"])
    common = {"created": _created(row), "owned_by": row["owner"] or "lorag", "kind": row["kind"],
              "parent": _parent(eng, row)}  # fmt: skip
    return [ModelCard(id=i, **common) for i in ids]
