"""/api/adapters and /api/kbs: the caller's adapters (versions, aliases, promote) and KBs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from lorag_gateway.api import Question
from lorag_gateway.auth import OwnerDep
from lorag_gateway.deps import GatewayDep, router_of
from lorag_gateway.handlers import catalog

router = APIRouter(prefix="/api", tags=["adapters", "knowledge bases"])


class Promote(BaseModel):
    version: int = Field(ge=1, description="Version the alias points at.")
    alias: str = Field(min_length=1, max_length=64, description="e.g. production")


class KbQuery(BaseModel):
    question: Question
    top_k: int = Field(5, ge=1, le=50)


@router.get("/adapters", summary="The caller's adapter versions")
async def adapters(owner: OwnerDep, gateway: GatewayDep) -> list[dict[str, Any]]:
    return await catalog.list_adapters(gateway.db, owner)


@router.get("/adapters/{name}", summary="One adapter: versions, aliases, alias history")
async def adapter(name: str, owner: OwnerDep, gateway: GatewayDep) -> dict[str, Any]:
    return await catalog.show_adapter(gateway.db, owner, name)


@router.post("/adapters/{name}/promote", summary="Point an alias at a version")
async def promote(name: str, body: Promote, owner: OwnerDep, gateway: GatewayDep) -> dict[str, Any]:
    return await catalog.promote(gateway.db, owner, name, body.version, body.alias)


@router.get("/kbs", summary="The caller's knowledge bases")
async def kbs(owner: OwnerDep, gateway: GatewayDep) -> list[dict[str, Any]]:
    return await catalog.list_kbs(gateway.db, owner)


@router.post("/kbs/{kb}/query", summary="Retrieve the chunks closest to a question")
async def query(kb: str, body: KbQuery, owner: OwnerDep, gateway: GatewayDep) -> dict[str, Any]:
    rag = router_of(gateway).rag
    return await catalog.query_kb(gateway.db, rag, owner, kb, body.question, body.top_k)
