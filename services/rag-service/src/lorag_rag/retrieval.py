"""Querying a knowledge base, measuring its retrieval quality, answering with citations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from lorag_rag.adapters import llm, registry
from lorag_rag.adapters.chroma_store import Hit
from lorag_rag.adapters.embedder import Embedder
from lorag_rag.config import LlmSettings
from lorag_rag.deps import RagDeps
from lorag_rag.domain.documents import QaPair
from lorag_rag.domain.metrics import RetrievalQuality, retrieval_quality
from lorag_rag.domain.prompts import Passage, chat_messages


class KbNotFound(LookupError):
    """No committed knowledge base of that name."""


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[dict[str, Any]]  # n, source, title, chunk id, score: what [n] refers to


def evaluate(
    deps: RagDeps, kb: str, embedder: Embedder, pairs: list[QaPair], version: int, k: int
) -> RetrievalQuality:
    """Hit rate@k and MRR of the questions against the KB as of `version`."""
    vectors = embedder.encode([p.question for p in pairs], deps.settings.embed_batch_size)
    hits = deps.store.query(kb, vectors, k, version)
    return retrieval_quality(pairs, [[h.text for h in found] for found in hits], k)


async def live_kb(conn: AsyncConnection[Any], kb: str) -> dict[str, Any]:
    row = await registry.get(conn, kb)
    if row is None or row["version"] == 0:
        raise KbNotFound(f"no knowledge base {kb!r}; `lorag kb ls` lists them")
    return row


def search(
    deps: RagDeps, row: dict[str, Any], question: str, top_k: int,
    where: dict[str, Any] | None = None,
) -> list[Hit]:  # fmt: skip
    """The top_k chunks of a committed KB for a question, embedded with the KB's own model."""
    embedder = deps.embedders.get(row["embedding_model"])
    vector = embedder.encode([question])
    return deps.store.query(row["name"], vector, top_k, int(row["version"]), where)[0]


async def query(
    conn: AsyncConnection[Any], deps: RagDeps, kb: str, question: str, top_k: int = 5,
    where: dict[str, Any] | None = None,
) -> list[Hit]:  # fmt: skip
    row = await live_kb(conn, kb)
    return await asyncio.to_thread(search, deps, row, question, top_k, where)


async def answer(
    conn: AsyncConnection[Any], deps: RagDeps, kb: str, question: str, top_k: int = 5,
    settings: LlmSettings | None = None,
) -> Answer:  # fmt: skip
    """Retrieve context from the KB and ask the configured chat model, citing passages as [n]."""
    hits = await query(conn, deps, kb, question, top_k)
    passages = [
        Passage(h.text, str(h.metadata.get("source", "?")), h.metadata.get("title")) for h in hits
    ]
    chat = settings or deps.llm or LlmSettings()
    text = await llm.complete(chat, chat_messages(question, passages))
    citations = [
        {"n": n, "source": p.source, "title": p.title, "chunk_id": h.id, "score": round(h.score, 4)}
        for n, (p, h) in enumerate(zip(passages, hits, strict=True), 1)
    ]
    return Answer(text, citations)
