"""/api/minions: the caller's minions; ask one, or every variant side by side."""

from __future__ import annotations

from fastapi import APIRouter

from lorag_api.hybrid import Ask, Minion, MinionAnswer
from lorag_gateway.auth import OwnerDep
from lorag_gateway.deps import GatewayDep

router = APIRouter(prefix="/api/minions", tags=["minions"])


@router.get("", summary="The caller's minions")
async def list_minions(owner: OwnerDep, gateway: GatewayDep) -> list[Minion]:
    return await gateway.hybrid.list_minions(owner)


@router.get("/{name}", summary="One minion")
async def show(name: str, owner: OwnerDep, gateway: GatewayDep) -> Minion:
    return await gateway.hybrid.show_minion(owner, name)


@router.post("/{name}/ask", summary="Ask a minion")
async def ask(name: str, body: Ask, owner: OwnerDep, gateway: GatewayDep) -> MinionAnswer:
    return await gateway.hybrid.ask(owner, name, body)
