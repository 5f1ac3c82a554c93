"""/api/adapters and /api/kbs: the caller's adapters (lora-service) and KBs (rag-service)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from lorag_api.base import segment
from lorag_api.lora import Adapter, AdapterVersion, Promote, Promoted
from lorag_api.rag import Hits, KnowledgeBase, Query
from lorag_gateway.api.models import FORWARDED, refusals
from lorag_gateway.auth import OwnerDep, ReaderDep
from lorag_gateway.deps import GatewayDep

router = APIRouter(prefix="/api", tags=["adapters", "knowledge bases"], responses=FORWARDED)


@router.get("/adapters", summary="The caller's adapter versions")
async def adapters(owner: ReaderDep, gateway: GatewayDep) -> list[AdapterVersion]:
    return await gateway.lora.list_adapters(owner)


@router.get("/adapters/{name}", summary="One adapter: versions, aliases, alias history")
async def adapter(name: str, owner: ReaderDep, gateway: GatewayDep) -> Adapter:
    return await gateway.lora.show_adapter(owner, name)


@router.post(
    "/adapters/{name}/promote", summary="Point an alias at a version", responses=refusals(403)
)
async def promote(name: str, body: Promote, owner: OwnerDep, gateway: GatewayDep) -> Promoted:
    return await gateway.lora.promote(owner, name, body)


@router.get("/kbs", summary="The caller's knowledge bases")
async def kbs(owner: ReaderDep, gateway: GatewayDep) -> list[KnowledgeBase]:
    return await gateway.rag.list_kbs(owner)


@router.get("/kbs/{kb}", summary="One knowledge base")
async def kb(kb: str, owner: ReaderDep, gateway: GatewayDep) -> KnowledgeBase:
    return await gateway.rag.show_kb(owner, kb)


@router.post(
    "/kbs/{kb}/query", response_model=Hits, summary="Retrieve the chunks closest to a question"
)
async def query(kb: str, body: Query, owner: ReaderDep, gateway: GatewayDep) -> Response:
    # The rag-service's answer, passed on as it is: it already holds the declared model, and
    # parsing and re-serialising it would only add to the hop people wait on.
    path = f"/v1/kbs/{segment(kb)}/query"
    raw = await gateway.rag.forward("POST", path, owner=owner, body=body)
    return Response(raw, media_type="application/json")
