"""POST /v1/recommend: profile an owner's uploaded dataset and rank the training types, with
memory, time and cost estimated on the machine that would train (the lora-service's)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from lorag_api.hybrid import Recommendation, RecommendFor
from lorag_core.service.api import OwnerHeader, Responses, invalid
from lorag_core.service.host import Runtime, RuntimeDep
from lorag_hybrid.config import HybridSettings
from lorag_hybrid.recommend import history, models
from lorag_hybrid.recommend.datasets import (
    dataset_keys,
    dataset_not_found,
    owned_prefix,
    read_files,
)
from lorag_hybrid.recommend.machines import training_machine
from lorag_hybrid.recommend.profile import profile
from lorag_hybrid.recommend.rank import Goal, rank

ERRORS: Responses = {
    404: {"description": "No such dataset of this owner's (code DATASET_NOT_FOUND)"},
    422: {"description": "Not an uploaded dataset's URI, no readable records, unknown model"},
}


def recommend_router(settings: HybridSettings) -> APIRouter:
    """The route, bound to the orchestrator's settings."""
    router = APIRouter(prefix="/v1", tags=["recommend"])

    @router.post("/recommend", response_model=Recommendation, responses=ERRORS,
                 summary="Rank the training types for an uploaded dataset")  # fmt: skip
    async def recommend(
        body: RecommendFor, owner: OwnerHeader, runtime: RuntimeDep
    ) -> Recommendation:
        return await recommend_for(runtime, settings, owner, body)

    return router


async def recommend_for(
    runtime: Runtime, settings: HybridSettings, owner: str, request: RecommendFor
) -> Recommendation:
    """Every training type ranked for the dataset: score, reasons, memory, time and cost."""
    try:
        model = models.resolve(request.base_model)
    except ValueError as exc:
        raise invalid(("body", "base_model"), str(exc)) from None
    bucket, prefix = owned_prefix(request.dataset, owner)
    objects = runtime.objects
    assert objects is not None, "the object store opens when the service starts"
    keys = await asyncio.to_thread(dataset_keys, objects, bucket, prefix)
    if not keys:
        raise dataset_not_found(request.dataset)
    found = await asyncio.to_thread(
        lambda: profile(read_files(objects, bucket, keys, settings.max_profile_bytes))
    )
    if found.records == 0:
        raise invalid(("body", "dataset"), f"{request.dataset} holds no readable records "
                      "(JSONL, CSV, Markdown or text)")  # fmt: skip
    async with runtime.db.connection() as conn:
        past = await history.notes_for(conn, found)
    machine, source, note = await training_machine(
        runtime.settings.service_secret, timeout=settings.resources_timeout_s
    )
    goal = Goal(target=request.target, private=request.private, budget_usd=request.budget_usd,
                epochs=request.epochs)  # fmt: skip
    ranked = rank(found, goal, model, machine, history=past)
    return Recommendation(
        dataset=request.dataset,
        profile=found.as_dict(),
        resources={**machine.as_dict(), "source": source},
        model=model.name,
        recommendations=[r.as_dict() for r in ranked],
        notes=[note] if note else [],
    )
