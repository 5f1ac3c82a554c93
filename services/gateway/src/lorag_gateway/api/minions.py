"""/api/minions: the caller's minions; ask one, or every variant side by side."""

from __future__ import annotations

from fastapi import APIRouter

from lorag_api.hybrid import Ask, Minion, MinionAnswer
from lorag_gateway.api.models import FORWARDED
from lorag_gateway.auth import ReaderDep
from lorag_gateway.deps import GatewayDep

router = APIRouter(prefix="/api/minions", tags=["minions"], responses=FORWARDED)


@router.get("", summary="The caller's minions")
async def list_minions(owner: ReaderDep, gateway: GatewayDep) -> list[Minion]:
    return await gateway.hybrid.list_minions(owner)


@router.get("/{name}", summary="One minion")
async def show(name: str, owner: ReaderDep, gateway: GatewayDep) -> Minion:
    return await gateway.hybrid.show_minion(owner, name)


@router.post("/{name}/ask", summary="Ask a minion")
async def ask(name: str, body: Ask, owner: ReaderDep, gateway: GatewayDep) -> MinionAnswer:
    return await gateway.hybrid.ask(owner, name, body)
