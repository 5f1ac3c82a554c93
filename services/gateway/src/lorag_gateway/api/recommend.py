"""/api/recommend: rank the training types for a dataset, with memory, time and cost."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lorag_gateway.auth import OwnerDep
from lorag_gateway.deps import GatewayDep
from lorag_gateway.handlers import recommend
from lorag_gateway.handlers.datasets import check_reference

router = APIRouter(prefix="/api/recommend", tags=["recommend"])


class RecommendFor(BaseModel):
    dataset: str = Field(description="s3:// URI of the dataset (e.g. from POST /api/datasets).")
    target: Literal["external", "local"] = Field("external", description="Where answers run.")
    private: bool = Field(False, description="The data must not leave this machine.")
    budget_usd: float | None = Field(None, ge=0, description="Most to spend on training.")
    base_model: str | None = Field(None, description="Base model for LoRA / fine-tuning.")
    epochs: float = Field(1.0, gt=0, le=100, description="Training passes to estimate.")


@router.post("", summary="Recommend training types for a dataset")
async def recommend_for(body: RecommendFor, owner: OwnerDep, gateway: GatewayDep) -> dict[str, Any]:
    uri = check_reference(body.dataset, owner, ("body", "dataset"))
    return await recommend.recommend(
        gateway.db, gateway.objects, uri, max_bytes=gateway.settings.max_profile_bytes,
        target=body.target, private=body.private, budget_usd=body.budget_usd,
        base_model=body.base_model, epochs=body.epochs,
    )  # fmt: skip
