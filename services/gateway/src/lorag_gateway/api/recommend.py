"""/api/recommend: rank the training types for a dataset, with memory, time and cost."""

from __future__ import annotations

from fastapi import APIRouter

from lorag_api.hybrid import Recommendation, RecommendFor
from lorag_gateway.api.models import FORWARDED
from lorag_gateway.auth import ReaderDep
from lorag_gateway.deps import GatewayDep
from lorag_gateway.handlers.datasets import check_reference

router = APIRouter(prefix="/api/recommend", tags=["recommend"], responses=FORWARDED)


@router.post("", summary="Recommend training types for a dataset")
async def recommend_for(
    body: RecommendFor, owner: ReaderDep, gateway: GatewayDep
) -> Recommendation:
    uri = check_reference(body.dataset, owner, ("body", "dataset"))
    return await gateway.hybrid.recommend(owner, body.model_copy(update={"dataset": uri}))
