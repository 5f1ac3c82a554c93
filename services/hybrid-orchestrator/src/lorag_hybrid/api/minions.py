"""/v1/minions: an owner's minions; ask one through its best (or a chosen) variant, or all.

Another owner's minion is not found, exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from lorag_api.hybrid import (
    VARIANTS,
    Ask,
    Minion,
    MinionAnswer,
    Rejected,
    Reply,
    Routing,
    Source,
    Variant,
)
from lorag_core.service.api import NotFound, OwnerHeader
from lorag_core.service.host import Runtime, RuntimeDep
from lorag_hybrid.routing import Router
from lorag_hybrid.saga import store

router = APIRouter(prefix="/v1/minions", tags=["minions"])
MISSING: dict[int | str, dict[str, Any]] = {
    404: {"description": "No minion of that name for this owner"}
}


def _router(request: Request) -> Router:
    return request.app.state.router


RouterDep = Annotated[Router, Depends(_router)]


async def _owned(runtime: Runtime, owner: str, name: str) -> dict[str, Any]:
    async with runtime.db.connection() as conn:
        row = await store.get_minion(conn, name)
    if row is None or row["owner"] != owner:
        raise NotFound(
            f"no minion {name!r}", code="MINION_NOT_FOUND",
            hint="`lorag minions` (GET /v1/minions) lists your minions",
        )  # fmt: skip
    return row


@router.get("", response_model=list[Minion], summary="The owner's minions")
async def list_minions(owner: OwnerHeader, runtime: RuntimeDep) -> list[dict[str, Any]]:
    async with runtime.db.connection() as conn:
        return await store.list_minions(conn, owner)


@router.get(
    "/{name}",
    response_model=Minion,
    responses=MISSING,
    summary="One minion: its knowledge base, adapter and variant scores",
)
async def show_minion(name: str, owner: OwnerHeader, runtime: RuntimeDep) -> dict[str, Any]:
    return await _owned(runtime, owner, name)


@router.post(
    "/{name}/ask",
    response_model=MinionAnswer,
    responses=MISSING,
    summary="Ask a minion: its best variant, a chosen one, or all side by side",
)
async def ask_minion(
    name: str, body: Ask, owner: OwnerHeader, runtime: RuntimeDep, router: RouterDep
) -> MinionAnswer:
    minion = await _owned(runtime, owner, name)
    answer = MinionAnswer(
        minion=name, question=body.question, best_variant=minion.get("best_variant"),
        scores=minion.get("scores") or {}, replies=[],
    )  # fmt: skip
    if body.compare or body.variant:
        chosen: list[Variant] = list(VARIANTS) if body.compare else [body.variant]  # type: ignore[list-item]
        replies = await asyncio.gather(
            *(_ask_one(router, minion, body.question, v) for v in chosen)
        )
        return answer.model_copy(update={"replies": list(replies)})
    try:
        routed = await router.route(minion, body.question)
    except Exception as exc:  # every variant failed: say why, as one reply
        reply = Reply(variant=minion.get("best_variant") or "rag", error=str(exc)[:500])
        return answer.model_copy(update={"replies": [reply]})
    routing = Routing(
        variant=routed.reply.variant, basis=routed.prediction.basis,
        scores=routed.prediction.scores, neighbours=routed.prediction.neighbours,
        rejected=[Rejected(**r) for r in routed.rejected],
    )  # fmt: skip
    return answer.model_copy(update={"replies": [_reply(routed.reply)], "routing": routing})


async def _ask_one(router: Router, minion: dict[str, Any], question: str, variant: Any) -> Reply:
    try:
        reply = await router.ask(minion, question, variant)
    except Exception as exc:  # one variant's endpoint being down must not hide the others
        return Reply(variant=variant, error=f"{type(exc).__name__}: {exc}"[:500])
    return _reply(reply)


def _reply(reply: Any) -> Reply:
    return Reply(
        variant=reply.variant, answer=reply.text, degenerate=reply.degenerate,
        sources=[Source(**s) for s in reply.sources],
    )  # fmt: skip
