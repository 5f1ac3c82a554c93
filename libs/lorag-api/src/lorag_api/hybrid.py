"""The hybrid-orchestrator's API: minions (list, show, ask through routing) and recommendations."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from lorag_api.base import ServiceClient, segment
from lorag_api.rag import Question

Variant = Literal["rag", "lora", "lora+rag", "extractive"]
# The order breaks ties in routing: sentences of the sources first, then retrieval-backed models.
VARIANTS: tuple[Variant, ...] = ("extractive", "rag", "lora+rag", "lora")


class Minion(BaseModel):
    """What a hybrid job made: its knowledge base, adapter, and how each variant scored."""

    model_config = ConfigDict(extra="ignore")

    name: str
    owner: str
    job_id: str | None = None
    training_type: str
    kb: str | None = None
    adapter: str | None = None
    scores: dict[str, float] = Field(default_factory=dict)
    best_variant: str | None = None
    updated_at: datetime | None = None


class Ask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Question
    variant: Variant | None = Field(
        None, description="Force rag, lora, lora+rag or extractive; none routes per question."
    )
    compare: bool = Field(False, description="Ask every variant and return them side by side.")


class Source(BaseModel):
    n: int
    source: str
    title: str | None = None
    text: str


class Reply(BaseModel):
    variant: str
    answer: str | None = None
    sources: list[Source] = Field(default_factory=list)
    error: str | None = Field(None, description="Why this variant could not answer.")
    degenerate: str | None = Field(
        None, description="Why the text is no answer: repetition, or no overlap with the sources."
    )


class Rejected(BaseModel):
    variant: str
    reason: str


class Routing(BaseModel):
    """Why the answering variant was chosen for this question."""

    variant: str = Field(description="The variant that answered.")
    basis: str = Field(description="nearest evaluated questions, or overall scores.")
    scores: dict[str, float] = Field(description="Each variant's predicted score on this question.")
    neighbours: list[dict[str, Any]] = Field(
        default_factory=list, description="The evaluated questions nearest this one, by similarity."
    )
    rejected: list[Rejected] = Field(
        default_factory=list, description="Better-predicted variants that failed or degenerated."
    )


class MinionAnswer(BaseModel):
    minion: str
    question: str
    best_variant: str | None = Field(None, description="The best variant over all evaluation.")
    scores: dict[str, float] = Field(
        default_factory=dict, description="Each variant's mean evaluation score."
    )
    replies: list[Reply]
    routing: Routing | None = Field(
        None, description="With no variant forced: how this question was routed."
    )


class RecommendFor(BaseModel):
    """A dataset already in object storage, and what the answers should run on."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="s3:// URI of the dataset.")
    target: Literal["external", "local"] = Field("external", description="Where answers run.")
    private: bool = Field(False, description="The data must not leave this machine.")
    budget_usd: float | None = Field(None, ge=0, description="Most to spend on training.")
    base_model: str | None = Field(None, description="Base model for LoRA / fine-tuning.")
    epochs: float = Field(1.0, gt=0, le=100, description="Training passes to estimate.")


class Recommendation(BaseModel):
    """The training types ranked for a dataset, best first, with their estimates."""

    dataset: str
    profile: dict[str, Any] = Field(description="Size, tokens, shape, language of the dataset.")
    resources: dict[str, Any] = Field(
        description="The machine that would run the training, and `source`: which service "
        "reported it (the lora-service's, or the orchestrator's own when that was unreachable)."
    )
    model: str = Field(description="The base model the LoRA and fine-tuning estimates assume.")
    recommendations: list[dict[str, Any]]
    notes: list[str] = Field(
        default_factory=list, description="What the caller should know about the estimates."
    )


class HybridClient(ServiceClient):
    """Minions and recommendations are the hybrid-orchestrator's."""

    async def list_minions(self, owner: str) -> list[Minion]:
        return await self.call("GET", "/v1/minions", list[Minion], owner=owner)

    async def show_minion(self, owner: str, name: str) -> Minion:
        return await self.call("GET", f"/v1/minions/{segment(name)}", Minion, owner=owner)

    async def ask(self, owner: str, name: str, ask: Ask) -> MinionAnswer:
        path = f"/v1/minions/{segment(name)}/ask"
        return await self.call("POST", path, MinionAnswer, owner=owner, body=ask)

    async def recommend(self, owner: str, request: RecommendFor) -> Recommendation:
        return await self.call("POST", "/v1/recommend", Recommendation, owner=owner, body=request)
