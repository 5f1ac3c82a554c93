"""The rag-service's API: knowledge bases, retrieval and answers with citations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from lorag_api.base import ServiceClient, segment

Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    Field(description="What to look for; not blank.", examples=["What is the cluster called?"]),
]


class KnowledgeBase(BaseModel):
    """A committed knowledge base: its live version, model, size and retrieval quality."""

    model_config = ConfigDict(extra="ignore")

    name: str
    version: int
    embedding_model: str
    chunk_count: int
    source_count: int
    hit_rate: float | None = None
    mrr: float | None = None
    eval_pairs: int | None = None
    eval_k: int | None = None
    owner: str
    job_id: str | None = None
    updated_at: datetime | None = None


class Query(BaseModel):
    """Retrieve the chunks closest to a question, optionally filtered on chunk metadata."""

    model_config = ConfigDict(extra="forbid")

    question: Question
    top_k: int = Field(5, ge=1, le=100, description="How many chunks.")
    where: dict[str, Any] | None = Field(
        None, description="Chroma filter on chunk metadata, e.g. {'source': 'faq.jsonl'}."
    )


class Hit(BaseModel):
    """One retrieved chunk: its rank, similarity, where it came from and its text."""

    rank: int
    score: float = Field(description="Cosine similarity; 1 is identical.")
    source: str | None = None
    position: int | None = None
    title: str | None = None
    id: str
    text: str


class Hits(BaseModel):
    kb: str
    question: str
    hits: list[Hit]


class AnswerRequest(BaseModel):
    """Retrieve context, then ask a chat model that cites it as [n]."""

    model_config = ConfigDict(extra="forbid")

    question: Question
    top_k: int = Field(5, ge=1, le=50)
    llm: Literal["external", "local"] = Field(
        "external",
        description="external: the service's configured LLM; local: the lora-service's API.",
    )
    model: str | None = Field(
        None, description="With llm=local: base, or an adapter (NAME, NAME:V, NAME@ALIAS)."
    )
    max_tokens: int = Field(128, ge=1, le=4096, description="Most tokens the answer may take.")

    @model_validator(mode="after")
    def _model_is_local(self) -> AnswerRequest:
        # the external LLM's model is the service's setting; a model here would be ignored
        if self.model is not None and self.llm != "local":
            raise ValueError("model applies to llm=local only (base or an adapter)")
        return self


class Citation(BaseModel):
    """What [n] in the answer refers to: the retrieved chunk, with its text."""

    n: int
    source: str
    title: str | None = None
    chunk_id: str
    score: float
    text: str


class Answer(BaseModel):
    """The chat model's answer, citing the passages as [n], and the model that wrote it."""

    kb: str
    question: str
    answer: str
    model: str
    citations: list[Citation]
    confidence: float | None = Field(
        None, description="Extractive answers: the best sentence's score (cosine, 1 is best)."
    )


class ExtractRequest(BaseModel):
    """Answer with the retrieved passages' own sentences that best match the question."""

    model_config = ConfigDict(extra="forbid")

    question: Question
    top_k: int = Field(5, ge=1, le=50, description="How many chunks to take sentences from.")
    sentences: int = Field(1, ge=1, le=5, description="How many sentences the answer joins.")


class EmbedRequest(BaseModel):
    """Texts to embed with a knowledge base's own embedding model."""

    model_config = ConfigDict(extra="forbid")

    texts: list[Annotated[str, StringConstraints(min_length=1, max_length=4000)]] = Field(
        min_length=1, max_length=256, description="Not blank; at most 256 per call."
    )


class Embeddings(BaseModel):
    """Unit-length vectors, one per text, in the order given."""

    kb: str
    model: str
    vectors: list[list[float]]


class RagClient(ServiceClient):
    """Knowledge bases are the rag-service's: it alone reads Chroma and embeds questions."""

    async def list_kbs(self, owner: str) -> list[KnowledgeBase]:
        return await self.call("GET", "/v1/kbs", list[KnowledgeBase], owner=owner)

    async def show_kb(self, owner: str, kb: str) -> KnowledgeBase:
        return await self.call("GET", f"/v1/kbs/{segment(kb)}", KnowledgeBase, owner=owner)

    async def query(self, owner: str, kb: str, query: Query) -> Hits:
        return await self.call(
            "POST", f"/v1/kbs/{segment(kb)}/query", Hits, owner=owner, body=query
        )

    async def answer(self, owner: str, kb: str, request: AnswerRequest) -> Answer:
        return await self.call(
            "POST", f"/v1/kbs/{segment(kb)}/answer", Answer, owner=owner, body=request
        )

    async def extract(self, owner: str, kb: str, request: ExtractRequest) -> Answer:
        """The passages' best sentences as the answer, citing them: nothing is generated."""
        return await self.call(
            "POST", f"/v1/kbs/{segment(kb)}/extract", Answer, owner=owner, body=request
        )

    async def embed(self, owner: str, kb: str, texts: list[str]) -> Embeddings:
        """The texts' vectors under the KB's embedding model (e.g. to compare questions)."""
        return await self.call(
            "POST", f"/v1/kbs/{segment(kb)}/embed", Embeddings, owner=owner,
            body=EmbedRequest(texts=texts),
        )  # fmt: skip
