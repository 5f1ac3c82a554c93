"""Answering: retrieve from a real KB (Postgres registry, embedded Chroma), ask a chat endpoint."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_rag import retrieval
from lorag_rag.adapters import registry
from lorag_rag.adapters.chroma_store import ChromaStore, collection_name
from lorag_rag.adapters.embedder import EmbedderCache
from lorag_rag.config import ChromaSettings, LlmSettings, RagSettings
from lorag_rag.deps import RagDeps
from lorag_rag.domain.chunking import chunk_documents
from lorag_rag.domain.documents import Document
from tests.support.openai_stub import openai_stub

pytestmark = pytest.mark.integration
FACTS = {
    "ops.md": "The on-call rotation changes every Tuesday at 09:00 UTC.",
    "infra.md": "The production cluster is called lighthouse.",
    "pets.md": "The office cat is named Pixel and likes warm laptops.",
}


@pytest.fixture(scope="module")
def deps(tmp_path_factory):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = RagSettings()
    chroma = ChromaSettings(path=tmp_path_factory.mktemp("chroma"))
    return RagDeps(settings, EmbedderCache(), ChromaStore(chroma))


async def build_kb(settings, deps: RagDeps) -> str:
    kb = f"answers-{uuid.uuid4().hex[:6]}"
    embedder = deps.embedders.get("all-MiniLM-L6-v2")
    docs = [Document(source, text, title=source) for source, text in FACTS.items()]
    chunks = chunk_documents(docs, embedder, 64, 8)
    deps.store.upsert(kb, chunks, embedder.encode([c.text for c in chunks]), 1)
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, row_factory=dict_row
    ) as conn:
        await registry.claim(conn, kb, "default", collection_name(kb), embedder.name, 384)
        summary = {"chunks": len(chunks), "sources": len(FACTS)}
        await registry.commit(conn, kb, 0, f"job-{kb}", summary, [])  # written straight to Chroma
    return kb


async def test_answer_cites_the_retrieved_context(settings, deps):
    kb = await build_kb(settings, deps)
    with openai_stub() as (base_url, seen):
        llm = LlmSettings(base_url=base_url, model="stub-model")
        async with await psycopg.AsyncConnection.connect(
            settings.postgres_dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            answer = await retrieval.answer(
                conn, deps, kb, "What is the production cluster called?", top_k=2, settings=llm
            )
            with pytest.raises(retrieval.KbNotFound):
                await retrieval.query(conn, deps, "no-such-kb", "anything")
            with pytest.raises(retrieval.KbNotFound):  # another owner's: not found, the same
                await retrieval.query(conn, deps, kb, "anything", owner="someone-else")
    assert answer.citations[0]["source"] == "infra.md" and answer.citations[0]["n"] == 1
    assert len(answer.citations) == 2 and "lighthouse" in answer.citations[0]["text"]
    assert answer.model == "stub-model"
    prompt = seen[0]["messages"][-1]["content"]
    assert "[1] (infra.md" in prompt and "lighthouse" in prompt
    assert seen[0]["model"] == "stub-model"
    assert "lighthouse" in answer.text  # the stub echoes the context it was given


def test_without_a_key_the_local_lora_service_answers():
    assert LlmSettings(base_url=None, api_key=None).effective_base_url == "http://127.0.0.1:8102/v1"
    hosted = LlmSettings(base_url=None, api_key="sk-real")
    assert hosted.effective_base_url is None  # the openai client's own default
