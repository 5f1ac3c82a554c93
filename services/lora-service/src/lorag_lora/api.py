"""The lora-service's admin API (service port, service token): adapters, aliases, name
ownership, and the resources a training job here can get."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query

from lorag_api.lora import Adapter, AdapterVersion, NameCheck, Promote, Promoted, Resources
from lorag_core.service.api import OwnerHeader, Responses
from lorag_core.service.host import RuntimeDep
from lorag_lora import catalog, resources
from lorag_lora.config import LoraSettings
from lorag_lora.domain.registry import NAME

NAME_RULE = "letters, digits, '.', '_', '-'; starts with a letter or digit; at most 64"
AdapterName = Annotated[str, Path(pattern=NAME.pattern, description=f"Adapter name ({NAME_RULE}).")]
NameFilter = Annotated[str | None, Query(pattern=NAME.pattern, description="Only this name.")]
NOT_FOUND: Responses = {
    404: {"description": "No such adapter of this owner's (code ADAPTER_NOT_FOUND)"}
}


def admin_router(settings: LoraSettings) -> APIRouter:
    """The routes, bound to the service's settings (the device it trains on)."""
    router = APIRouter(prefix="/v1", tags=["adapters"])

    @router.get("/adapters", response_model=list[AdapterVersion],
                summary="The owner's ready adapter versions")  # fmt: skip
    async def list_adapters(
        owner: OwnerHeader, runtime: RuntimeDep, name: NameFilter = None
    ) -> list[AdapterVersion]:
        return await catalog.list_adapters(runtime.db, owner, name)

    @router.get("/adapters/{name}", response_model=Adapter, responses=NOT_FOUND,
                summary="One adapter: versions, aliases, alias history")  # fmt: skip
    async def show_adapter(name: AdapterName, owner: OwnerHeader, runtime: RuntimeDep) -> Adapter:
        return await catalog.show_adapter(runtime.db, owner, name)

    @router.post("/adapters/{name}/promote", response_model=Promoted, responses=NOT_FOUND,
                 summary="Point an alias at one of the owner's versions")  # fmt: skip
    async def promote(
        name: AdapterName, body: Promote, owner: OwnerHeader, runtime: RuntimeDep
    ) -> Promoted:
        return await catalog.promote(runtime.db, owner, name, body.version, body.alias)

    @router.get("/adapter-names/{name}", response_model=NameCheck,
                summary="May this owner add versions to this adapter name")  # fmt: skip
    async def check_name(name: AdapterName, owner: OwnerHeader, runtime: RuntimeDep) -> NameCheck:
        return await catalog.check_name(runtime.db, owner, name)

    @router.get("/resources", response_model=Resources, tags=["resources"],
                summary="What a training job on this service's machine can get")  # fmt: skip
    async def machine() -> Resources:
        return await asyncio.to_thread(resources.detect, settings.device)

    return router
