"""What routes receive: the process's shared things, and the caller's owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from faststream.kafka import KafkaBroker
from psycopg_pool import AsyncConnectionPool

from lorag_api.hybrid import HybridClient
from lorag_api.lora import LoraClient
from lorag_api.rag import RagClient
from lorag_core.storage import ObjectStore
from lorag_gateway.config import GatewaySettings
from lorag_gateway.ratelimit import RateLimiter
from lorag_gateway.tokencache import TokenCache

if TYPE_CHECKING:
    from lorag_gateway.watch import JobWatchers


@dataclass
class Gateway:
    """The heavy things of the gateway process, built once in the composition root."""

    settings: GatewaySettings
    db: AsyncConnectionPool
    objects: ObjectStore
    broker: KafkaBroker
    watchers: JobWatchers
    limiter: RateLimiter
    tokens: TokenCache
    rag: RagClient  # knowledge bases are the rag-service's
    lora: LoraClient  # adapters are the lora-service's
    hybrid: HybridClient  # minions and recommendations are the hybrid-orchestrator's

    async def close(self) -> None:
        await self.watchers.close()
        for client in (self.rag, self.lora, self.hybrid):
            await client.close()


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
