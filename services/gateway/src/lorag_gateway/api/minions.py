"""/api/minions: the caller's minions; ask one, or every variant side by side."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lorag_gateway.api import Question
from lorag_gateway.auth import OwnerDep
from lorag_gateway.deps import GatewayDep, router_of
from lorag_gateway.handlers import minions

router = APIRouter(prefix="/api/minions", tags=["minions"])


class Ask(BaseModel):
    question: Question
    variant: str | None = Field(None, description="Force rag, lora or lora+rag.")
    compare: bool = Field(False, description="Ask every variant and return them side by side.")


@router.get("", summary="The caller's minions")
async def list_minions(owner: OwnerDep, gateway: GatewayDep) -> list[dict[str, Any]]:
    return await minions.list_owned(gateway.db, owner)


@router.post("/{name}/ask", summary="Ask a minion")
async def ask(name: str, body: Ask, owner: OwnerDep, gateway: GatewayDep) -> dict[str, Any]:
    return await minions.ask(
        gateway.db, router_of(gateway), owner, name, body.question, body.variant, body.compare
    )
