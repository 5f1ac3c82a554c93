"""`GET /v1/serving` on the admin port: what the inference engine is doing right now."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lorag_lora.serving.engine import Engine


class ServingStatus(BaseModel):
    """The engine's load: requests decoding, waiting, and what is loaded."""

    ready: bool = Field(description="The base model is loaded.")
    running: int = Field(description="Requests in the batch being decoded.")
    waiting: int = Field(description="Requests queued for a batch slot.")
    max_batch: int = Field(description="Batch slots.")
    max_queue: int = Field(description="Queue length beyond which requests get 429.")
    loaded: dict[str, str] = Field(description="Loaded adapters and fine-tuned models: id -> kind.")


def status_router(engine_of: Callable[[], Engine | None]) -> APIRouter:
    """The route, over whatever engine `engine_of` returns (None while the base model loads)."""
    router = APIRouter(prefix="/v1", tags=["serving"])

    @router.get("/serving", response_model=ServingStatus, summary="The inference engine's load")
    async def serving() -> ServingStatus:
        eng = engine_of()
        if eng is None:
            return ServingStatus(ready=False, running=0, waiting=0, max_batch=0, max_queue=0,
                                 loaded={})  # fmt: skip
        sched = eng.scheduler
        return ServingStatus(ready=True, running=sched.running, waiting=sched.waiting,
                             max_batch=sched.max_batch, max_queue=sched.max_queue,
                             loaded=eng.loaded_labels())  # fmt: skip

    return router
