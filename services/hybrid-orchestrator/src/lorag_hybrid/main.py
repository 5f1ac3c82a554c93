"""Entry point of the hybrid-orchestrator: runs EXTERNAL_HYBRID and LOCAL_HYBRID sagas."""

from __future__ import annotations

import asyncio
import logging
import os

from lorag_api.base import ServiceUrls
from lorag_api.lora import ChatClient
from lorag_api.rag import RagClient
from lorag_core.db.changes import JobChanges
from lorag_core.domain.training_types import TrainingType
from lorag_core.service.entry import serve
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.service.worker import register_worker
from lorag_core.settings import Settings
from lorag_hybrid.api import minions
from lorag_hybrid.api.recommend import recommend_router
from lorag_hybrid.config import FinetuneSettings, HybridSettings
from lorag_hybrid.handlers import make_runner
from lorag_hybrid.recommend.resources import detect
from lorag_hybrid.routing import Router

log = logging.getLogger(__name__)
HEALTH_PORT = 8103
OWNED = frozenset({TrainingType.EXTERNAL_HYBRID, TrainingType.LOCAL_HYBRID})


def make_router(settings: HybridSettings, service_token: str) -> Router:
    """Routing over the rag-service's API and the lora-service's OpenAI API: no model here."""
    urls, timeout = ServiceUrls(), settings.ask_timeout_s
    provider = FinetuneSettings()
    remote = provider.base_url and provider.base_url.rstrip("/") != urls.lora_openai_url.rstrip("/")
    key = provider.api_key.get_secret_value() if provider.api_key else service_token
    return Router(
        RagClient(urls.rag_service_url, service_token, timeout=timeout),
        ChatClient(urls.lora_openai_url, service_token, timeout=timeout),
        ChatClient(provider.base_url, key, timeout=timeout) if remote and provider.base_url
        else None,
    )  # fmt: skip


def register(host: ServiceHost) -> None:
    settings = HybridSettings()
    router = make_router(settings, host.settings.service_secret)
    host.api.state.router = router
    host.add_routes(minions.router)
    warming: list[asyncio.Task[None]] = []

    async def warm_up() -> None:
        # Importing torch for the GPU probe takes seconds: done while the service already
        # takes jobs, so the first saga does not wait for it.
        try:
            await asyncio.to_thread(detect)
            log.info("warmed up: GPU probed")
        except Exception:
            log.exception("warm-up failed; the first saga probes the GPU instead")

    changes = JobChanges(host.settings.postgres_dsn)

    async def start(runtime: Runtime) -> None:
        changes.start()
        if settings.warm_up:
            warming.append(asyncio.create_task(warm_up()))

    async def stop(runtime: Runtime) -> None:
        await changes.stop()
        await router.close()

    host.after_start(start)
    host.on_stop(stop)
    # Sagas mostly wait on their stages: several can run side by side.
    register_worker(host, OWNED, make_runner(settings, router, changes), concurrency=4)
    host.add_routes(recommend_router(settings))


def run() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    serve("hybrid-orchestrator", Settings(), register, health_port=HEALTH_PORT)
