"""Composition root of the gateway: the job tracker, the HTTP API and the console in one process."""

from __future__ import annotations

import logging

from lorag_api.base import ServiceUrls
from lorag_api.hybrid import HybridClient
from lorag_api.lora import LoraClient
from lorag_api.rag import RagClient
from lorag_core.db.changes import JobChanges
from lorag_core.service.entry import serve
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.service.http import ApiServer
from lorag_core.settings import Settings
from lorag_gateway.app import create_app
from lorag_gateway.config import GatewaySettings
from lorag_gateway.deps import Gateway
from lorag_gateway.ratelimit import RateLimiter
from lorag_gateway.tokencache import TokenCache
from lorag_gateway.watch import JobWatchers

HEALTH_PORT = 8105
log = logging.getLogger(__name__)


def build(runtime: Runtime, settings: GatewaySettings) -> Gateway:
    """The gateway's shared things from the service host's runtime."""
    assert runtime.objects is not None
    changes = JobChanges(runtime.settings.postgres_dsn)
    changes.start()
    urls, token = ServiceUrls(), runtime.settings.service_secret
    return Gateway(
        settings=settings, db=runtime.db, objects=runtime.objects, broker=runtime.broker,
        watchers=JobWatchers(runtime.db, changes, settings.poll_s),
        limiter=RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst),
        tokens=TokenCache(settings.token_cache_s),
        rag=RagClient(urls.rag_service_url, token),
        lora=LoraClient(urls.lora_service_url, token),
        hybrid=HybridClient(urls.hybrid_service_url, token, timeout=300),  # asks take a while
    )  # fmt: skip


def register(host: ServiceHost) -> None:
    """Serve the API with uvicorn inside the service once the broker is connected."""
    settings = GatewaySettings()
    state: dict[str, object] = {}

    @host.after_start
    async def start_api(runtime: Runtime) -> None:
        gateway = build(runtime, settings)
        server = ApiServer(create_app(gateway), settings.host, settings.port, name="gateway API")
        state.update(server=server, gateway=gateway)
        await server.start()

    @host.on_stop
    async def stop_api(runtime: Runtime) -> None:
        server, gateway = state.get("server"), state.get("gateway")
        if isinstance(server, ApiServer) and isinstance(gateway, Gateway):
            server.server.should_exit = True  # no new requests; open SSE streams end below
            await gateway.close()
            await server.stop()


def run() -> None:
    serve("gateway", Settings(), register, health_port=HEALTH_PORT)
