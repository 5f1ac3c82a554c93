"""Entry point of the hybrid-orchestrator: runs EXTERNAL_HYBRID and LOCAL_HYBRID sagas."""

from __future__ import annotations

import os

from lorag_core.domain.training_types import TrainingType
from lorag_core.service.entry import serve
from lorag_core.service.host import ServiceHost
from lorag_core.service.worker import register_worker
from lorag_core.settings import Settings
from lorag_hybrid.config import HybridSettings
from lorag_hybrid.handlers import make_runner
from lorag_hybrid.routing import Router

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


def register(host: ServiceHost) -> None:
    settings = HybridSettings()
    routers: list[Router] = []

    def router() -> Router:
        if not routers:  # built on the first hybrid, not at start: the embedder is heavy
            routers.append(make_router(settings))
        return routers[0]

    # Sagas mostly wait on their stages: several can run side by side.
    register_worker(host, OWNED, make_runner(settings, router), concurrency=4)


def run() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    serve("hybrid-orchestrator", Settings(), register, health_port=HEALTH_PORT)
