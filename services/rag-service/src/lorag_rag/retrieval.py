"""Querying a knowledge base, measuring its retrieval quality, answering with citations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from lorag_rag.adapters import llm, registry
from lorag_rag.adapters.chroma_store import Hit
from lorag_rag.adapters.embedder import Embedder
from lorag_rag.config import LlmSettings
from lorag_rag.deps import RagDeps
from lorag_rag.domain import extractive
from lorag_rag.domain.documents import QaPair
from lorag_rag.domain.metrics import RetrievalQuality, retrieval_quality
from lorag_rag.domain.prompts import Passage, chat_messages


class KbNotFound(LookupError):
    """No committed knowledge base of that name that the caller's owner may see."""

    hint = "`lorag kb ls` (GET /v1/kbs) lists your knowledge bases"

    def __init__(self, kb: str) -> None:
        super().__init__(f"no knowledge base {kb!r}")
        self.kb = kb


@dataclass(frozen=True)
class Answer:
    text: str
    citations: list[dict[str, Any]]  # n, source, title, chunk id, score, text: what [n] cites
    model: str = ""


def evaluate(
    deps: RagDeps, kb: str, embedder: Embedder, pairs: list[QaPair], version: int, k: int
) -> RetrievalQuality:
    """Hit rate@k and MRR of the questions against the KB as of `version`."""
    vectors = embedder.encode([p.question for p in pairs], deps.settings.embed_batch_size)
    hits = deps.store.query(kb, vectors, k, version)
    return retrieval_quality(pairs, [[h.text for h in found] for found in hits], k)


async def live_kb(conn: AsyncConnection[Any], kb: str, owner: str | None = None) -> dict[str, Any]:
    """The KB's registry row; another owner's KB is not found, exactly like a missing one."""
    return visible(await registry.get(conn, kb), kb, owner)


def visible(row: dict[str, Any] | None, kb: str, owner: str | None) -> dict[str, Any]:
    """The row of a committed KB the owner may see; KbNotFound otherwise."""
    if row is None or row["version"] == 0 or (owner is not None and row["owner"] != owner):
        raise KbNotFound(kb)
    return row


def search(
    deps: RagDeps, row: dict[str, Any], question: str, top_k: int,
    where: dict[str, Any] | None = None,
) -> list[Hit]:  # fmt: skip
    """The top_k chunks of a committed KB for a question, embedded with the KB's own model."""
    vector = deps.embedders.get(row["embedding_model"]).encode_one(question)
    return _nearest(deps, row, vector, top_k, where)


def _nearest(
    deps: RagDeps, row: dict[str, Any], vector: Any, top_k: int,
    where: dict[str, Any] | None = None,
) -> list[Hit]:  # fmt: skip
    """The top_k chunks of the KB's live version nearest to an embedded question."""
    return deps.store.query(row["name"], vector, top_k, int(row["version"]), where)[0]


async def query(
    conn: AsyncConnection[Any], deps: RagDeps, kb: str, question: str, top_k: int = 5,
    where: dict[str, Any] | None = None, owner: str | None = None,
) -> list[Hit]:  # fmt: skip
    row = await live_kb(conn, kb, owner)
    return await deps.queries.run(search, deps, row, question, top_k, where)


async def answer(
    conn: AsyncConnection[Any], deps: RagDeps, kb: str, question: str, top_k: int = 5,
    settings: LlmSettings | None = None, owner: str | None = None,
) -> Answer:  # fmt: skip
    """Retrieve context from the KB and ask the configured chat model, citing passages as [n]."""
    row = await live_kb(conn, kb, owner)
    return await answer_from(deps, row, question, top_k, settings)


async def answer_from(
    deps: RagDeps, row: dict[str, Any], question: str, top_k: int = 5,
    settings: LlmSettings | None = None, max_tokens: int | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:  # fmt: skip
    """`answer` for a KB already looked up: no database connection is held while the LLM
    writes."""
    hits = await deps.queries.run(search, deps, row, question, top_k)
    passages = [
        Passage(h.text, str(h.metadata.get("source", "?")), h.metadata.get("title")) for h in hits
    ]
    chat = settings or deps.llm or LlmSettings()
    text = await _complete_within_context(chat, question, passages, max_tokens, headers)
    hits = hits[: len(passages)]
    citations = [
        {"n": n, "source": p.source, "title": p.title, "chunk_id": h.id,
         "score": round(h.score, 4), "text": h.text}
        for n, (p, h) in enumerate(zip(passages, hits, strict=True), 1)
    ]  # fmt: skip
    return Answer(text, citations, chat.model)


async def _complete_within_context(
    chat: LlmSettings, question: str, passages: list[Passage], max_tokens: int | None,
    headers: dict[str, str] | None,
) -> str:  # fmt: skip
    """The model's answer from as many of the best passages as its context holds: a prompt the
    model refuses as too long is sent again without the lowest-ranked passage (`passages` is cut
    to those used). With one passage left, the refusal stands."""
    import openai

    while True:
        try:
            return await llm.complete(
                chat, chat_messages(question, passages), max_tokens=max_tokens, headers=headers
            )
        except openai.BadRequestError as exc:
            if exc.code != "context_length_exceeded" or len(passages) <= 1:
                raise
            del passages[-1]


def extract_from(
    deps: RagDeps, row: dict[str, Any], question: str, top_k: int = 5, count: int = 1
) -> tuple[Answer, float | None]:
    """The retrieved passages' `count` best sentences as the answer, and the best one's score."""
    embedder = deps.embedders.get(row["embedding_model"])
    vector = embedder.encode_one(question)  # once: it finds the passages and ranks the sentences
    hits = _nearest(deps, row, vector, top_k)
    candidates = extractive.sentences([h.text for h in hits])
    question_vector = vector[0]
    ranked = (
        extractive.rank(
            question, question_vector, candidates, embedder.encode([s.text for s in candidates])
        )
        if candidates
        else []
    )
    best = ranked[:count]
    citations = [
        {"n": n, "source": str(h.metadata.get("source", "?")), "title": h.metadata.get("title"),
         "chunk_id": h.id, "score": round(h.score, 4), "text": h.text}
        for n, h in enumerate(hits, 1)
    ]  # fmt: skip
    text = extractive.answer_text(best) if best else "The sources say nothing about this."
    model = f"extractive:{row['embedding_model']}"
    return Answer(text, citations, model), (best[0].score if best else None)


def embed(deps: RagDeps, row: dict[str, Any], texts: list[str]) -> list[list[float]]:
    """Unit-length vectors of the texts under the KB's model, rounded for the wire."""
    vectors = deps.embedders.get(row["embedding_model"]).encode(texts)
    return [[round(float(x), 5) for x in v] for v in vectors]
