"""What routes receive: the process's shared things, and the caller's owner."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from faststream.kafka import KafkaBroker
from psycopg_pool import AsyncConnectionPool

from lorag_core.storage import ObjectStore
from lorag_gateway.config import GatewaySettings
from lorag_gateway.ratelimit import RateLimiter

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
    lazy: dict[str, Any] = field(default_factory=dict)  # built on first use: embedders, routers


def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


def router_of(gateway: Gateway) -> Any:
    """The minion router (and its retrieval deps), built on first use: it loads embedders."""
    if "router" not in gateway.lazy:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from lorag_hybrid.config import HybridSettings
        from lorag_hybrid.main import make_router

        gateway.lazy["router"] = make_router(HybridSettings())
    return gateway.lazy["router"]
