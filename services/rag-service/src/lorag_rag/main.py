"""Composition root of the rag-service: real adapters, the EXTERNAL_RAG worker and its API."""

from __future__ import annotations

import asyncio
import logging
import os

from lorag_core.domain.training_types import TrainingType
from lorag_core.service.compensation import register_compensation
from lorag_core.service.entry import serve
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.service.worker import register_worker
from lorag_core.settings import Settings
from lorag_rag.adapters.chroma_store import ChromaStore
from lorag_rag.adapters.datasets import DatasetReader
from lorag_rag.adapters.embedder import EmbedderCache
from lorag_rag.api import kbs
from lorag_rag.compensation import make_undo
from lorag_rag.config import ChromaSettings, LlmSettings, RagSettings
from lorag_rag.deps import RagDeps
from lorag_rag.handlers import DepsProvider, make_runner
from lorag_rag.kb_rows import stop_listening

HEALTH_PORT = 8101
OWNED = frozenset({TrainingType.EXTERNAL_RAG})
DEFAULT_MODEL = "all-MiniLM-L6-v2"
log = logging.getLogger(__name__)


def register(host: ServiceHost) -> None:
    # Chat calls to the LLM endpoint become GenAI spans in the caller's trace.
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    if not OpenAIInstrumentor().is_instrumented_by_opentelemetry:
        OpenAIInstrumentor().instrument(tracer_provider=host.tracer_provider)
    provider = DepsProvider()

    async def build(runtime: Runtime) -> None:
        settings = RagSettings()
        assert runtime.objects is not None
        embedders = EmbedderCache(
            settings.torch_threads, settings.embed_dtype, settings.query_runtime,
            settings.encode_lanes,
        )  # fmt: skip
        # Loaded before the service reports ready, so the first job does not pay for it.
        model = await asyncio.to_thread(embedders.get, DEFAULT_MODEL)
        # One encode too: torch's first call sets up its kernels, a second or so on a busy host.
        await asyncio.to_thread(model.encode, ["warm up"])
        await asyncio.to_thread(model.encode_one, "warm up")
        store = await asyncio.to_thread(ChromaStore, ChromaSettings())
        provider.deps = RagDeps(
            settings, embedders, store, DatasetReader(runtime.objects, settings.allowed_roots),
            LlmSettings(),
        )  # fmt: skip
        listening["task"] = asyncio.create_task(
            provider.deps.kb_rows.listen(runtime.settings.postgres_dsn), name="kb-changes"
        )
        log.info("rag-service ready: model %s loaded (%s; questions through %s)",
                 DEFAULT_MODEL, model.dtype, model.query_runtime)  # fmt: skip

    async def stop(runtime: Runtime) -> None:
        await stop_listening(listening.pop("task", None))

    listening: dict[str, asyncio.Task[None]] = {}
    host.on_start(build)
    host.on_stop(stop)
    host.api.state.rag_deps = provider  # the API's routes share the worker's model and store
    host.add_routes(kbs.router)
    register_worker(host, OWNED, make_runner(provider))
    register_compensation(host, make_undo(provider))


def run() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged model needs no hub
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb phones home otherwise
    serve("rag-service", Settings(), register, health_port=HEALTH_PORT)
