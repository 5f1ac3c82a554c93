"""/v1/kbs: an owner's committed knowledge bases, retrieval, and answers with citations.

Another owner's knowledge base is not found, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from lorag_api.rag import (
    Answer,
    AnswerRequest,
    Embeddings,
    EmbedRequest,
    ExtractRequest,
    Hit,
    Hits,
    KnowledgeBase,
    Query,
)
from lorag_core.service.api import ApiError, NotFound, OwnerHeader
from lorag_core.service.host import Runtime, RuntimeDep
from lorag_rag import retrieval
from lorag_rag.adapters import registry
from lorag_rag.adapters.chroma_store import Hit as StoredHit
from lorag_rag.api.chat import chat_settings, llm_errors
from lorag_rag.config import LlmSettings
from lorag_rag.deps import RagDeps

router = APIRouter(prefix="/v1/kbs", tags=["knowledge bases"])
MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "No committed knowledge base of that name for this owner"}
}


class InvalidFilter(ApiError):
    status = 422


async def _deps(request: Request) -> RagDeps:
    """async: a plain `def` dependency would cost a thread-pool hop per request."""
    return request.app.state.rag_deps()


DepsDep = Annotated[RagDeps, Depends(_deps)]


async def _owned(runtime: Runtime, deps: RagDeps, kb: str, owner: str) -> dict[str, Any]:
    """The KB's row (cached while Postgres reports its changes: `lorag_rag.kb_rows`); no
    connection is held during any embedding or LLM work."""
    try:
        return retrieval.visible(await deps.kb_rows.get(runtime.db, kb), kb, owner)
    except retrieval.KbNotFound as exc:
        raise NotFound(str(exc), code="KB_NOT_FOUND", hint=exc.hint) from None


@router.get("", response_model=list[KnowledgeBase], summary="The owner's knowledge bases")
async def list_kbs(owner: OwnerHeader, runtime: RuntimeDep) -> list[dict[str, Any]]:
    async with runtime.db.connection() as conn:
        return await registry.list_all(conn, owner)


@router.get(
    "/{kb}",
    response_model=KnowledgeBase,
    responses=MISSING,
    summary="One knowledge base: live version, model, size, retrieval quality",
)
async def show_kb(
    kb: str, owner: OwnerHeader, runtime: RuntimeDep, deps: DepsDep
) -> dict[str, Any]:
    return await _owned(runtime, deps, kb, owner)


@router.post(
    "/{kb}/query",
    response_model=Hits,
    responses=MISSING,
    summary="The chunks closest to a question, optionally filtered",
)
async def query_kb(
    kb: str, body: Query, owner: OwnerHeader, runtime: RuntimeDep, deps: DepsDep
) -> Hits:
    row = await _owned(runtime, deps, kb, owner)
    try:
        found = await deps.queries.run(
            retrieval.search, deps, row, body.question, body.top_k, body.where
        )
    except ValueError as exc:  # Chroma's verdict on a malformed `where`
        raise InvalidFilter(
            f"where: {exc}", code="INVALID_FILTER",
            hint="a Chroma metadata filter, e.g. {\"source\": \"faq.jsonl\"}",
        ) from None  # fmt: skip
    return Hits(kb=kb, question=body.question, hits=[_hit(n, h) for n, h in enumerate(found, 1)])


@router.post(
    "/{kb}/answer",
    response_model=Answer,
    responses=MISSING,
    summary="Retrieve, then answer with a chat model citing the passages as [n]",
)
async def answer_kb(
    kb: str, body: AnswerRequest, owner: OwnerHeader, runtime: RuntimeDep, deps: DepsDep
) -> Answer:
    row = await _owned(runtime, deps, kb, owner)
    chat = chat_settings(body, deps.llm or LlmSettings(), runtime.settings.service_secret)
    # the owner travels with the call, so the lora-service can refuse another owner's adapter
    headers = {"X-Lorag-Owner": owner} if body.llm == "local" else None
    with llm_errors(chat):
        found = await retrieval.answer_from(
            deps, row, body.question, body.top_k, chat, body.max_tokens, headers
        )
    return Answer(
        kb=kb, question=body.question, answer=found.text, model=found.model,
        citations=found.citations,
    )  # fmt: skip


@router.post(
    "/{kb}/extract",
    response_model=Answer,
    responses=MISSING,
    summary="Answer with the retrieved passages' best sentences, citing them as [n]",
)
async def extract_kb(
    kb: str, body: ExtractRequest, owner: OwnerHeader, runtime: RuntimeDep, deps: DepsDep
) -> Answer:
    row = await _owned(runtime, deps, kb, owner)
    found, confidence = await deps.queries.run(
        retrieval.extract_from, deps, row, body.question, body.top_k, body.sentences
    )
    return Answer(
        kb=kb, question=body.question, answer=found.text, model=found.model,
        citations=found.citations, confidence=confidence,
    )  # fmt: skip


@router.post(
    "/{kb}/embed",
    response_model=Embeddings,
    responses=MISSING,
    summary="Embed texts with the knowledge base's own model (unit-length vectors)",
)
async def embed_kb(
    kb: str, body: EmbedRequest, owner: OwnerHeader, runtime: RuntimeDep, deps: DepsDep
) -> Embeddings:
    row = await _owned(runtime, deps, kb, owner)
    vectors = await asyncio.to_thread(retrieval.embed, deps, row, body.texts)
    return Embeddings(kb=kb, model=row["embedding_model"], vectors=vectors)


def _hit(rank: int, hit: StoredHit) -> Hit:
    meta = hit.metadata
    return Hit(
        rank=rank, score=round(hit.score, 4), source=meta.get("source"),
        position=meta.get("position"), title=meta.get("title"), id=hit.id, text=hit.text,
    )  # fmt: skip
