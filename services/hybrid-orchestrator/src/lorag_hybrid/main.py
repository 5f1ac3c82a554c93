"""Entry point of the hybrid-orchestrator: runs EXTERNAL_HYBRID and LOCAL_HYBRID sagas."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable

from lorag_core.db.changes import JobChanges
from lorag_core.domain.training_types import TrainingType
from lorag_core.service.entry import serve
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.service.worker import register_worker
from lorag_core.settings import Settings
from lorag_hybrid.api.recommend import recommend_router
from lorag_hybrid.config import HybridSettings
from lorag_hybrid.handlers import make_runner
from lorag_hybrid.recommend.resources import detect
from lorag_hybrid.routing import Router

log = logging.getLogger(__name__)
HEALTH_PORT = 8103
OWNED = frozenset({TrainingType.EXTERNAL_HYBRID, TrainingType.LOCAL_HYBRID})


def make_router(settings: HybridSettings) -> Router:
    """Retrieval through the rag-service's library and store; answers over HTTP."""
    from lorag_rag.adapters.chroma_store import ChromaStore
    from lorag_rag.adapters.embedder import EmbedderCache
    from lorag_rag.config import ChromaSettings, LlmSettings, RagSettings
    from lorag_rag.deps import RagDeps

    rag = RagSettings()
    deps = RagDeps(rag, EmbedderCache(rag.torch_threads), ChromaStore(ChromaSettings()))
    return Router(deps, settings.lora_api, LlmSettings())


class RouterSlot:
    """The router, built once per process, on a worker thread: whoever asks first builds it."""

    def __init__(self, build: Callable[[], Router]) -> None:
        self._build, self._lock = build, threading.Lock()
        self._router: Router | None = None

    def get(self) -> Router:
        with self._lock:
            if self._router is None:
                self._router = self._build()
            return self._router


def register(host: ServiceHost) -> None:
    settings = HybridSettings()
    router = RouterSlot(lambda: make_router(settings))
    warming: list[asyncio.Task[None]] = []

    async def warm_up() -> None:
        # Importing torch (GPU probe) and loading the embedder take seconds: done while the
        # service already takes jobs, so the first saga's stages start without waiting for them.
        try:
            await asyncio.to_thread(detect)
            await asyncio.to_thread(router.get)
            log.info("warmed up: GPU probed, evaluation router loaded")
        except Exception:
            log.exception("warm-up failed; the first saga builds the router instead")

    changes = JobChanges(host.settings.postgres_dsn)

    async def start(runtime: Runtime) -> None:
        changes.start()
        if settings.warm_up:
            warming.append(asyncio.create_task(warm_up()))

    async def stop(runtime: Runtime) -> None:
        await changes.stop()

    host.after_start(start)
    host.on_stop(stop)
    # Sagas mostly wait on their stages: several can run side by side.
    register_worker(host, OWNED, make_runner(settings, router.get, changes), concurrency=4)
    host.add_routes(recommend_router(settings))


def run() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    serve("hybrid-orchestrator", Settings(), register, health_port=HEALTH_PORT)
