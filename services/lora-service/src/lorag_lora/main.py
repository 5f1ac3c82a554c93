"""Entry point of the lora-service: the LOCAL_LORA / LOCAL_FINE_TUNING worker and the local LLM."""

from __future__ import annotations

import asyncio
import logging
import os
from functools import partial
from typing import Any

import torch

from lorag_core.contracts import JobResult
from lorag_core.domain.training_types import TrainingType
from lorag_core.service.compensation import register_compensation
from lorag_core.service.entry import serve
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.service.http import ApiServer
from lorag_core.service.worker import JobContext, register_worker
from lorag_core.settings import Profile, Settings
from lorag_lora.adapters.models import ModelManager
from lorag_lora.api import admin_router
from lorag_lora.compensation import undo
from lorag_lora.config import LoraSettings
from lorag_lora.handlers import Deps, run_job
from lorag_lora.openai_keys import KeyStore
from lorag_lora.serving.app import create_app
from lorag_lora.serving.engine import Engine
from lorag_lora.serving.status import status_router

HEALTH_PORT = 8112  # 8102 is the inference API's
OWNED = frozenset({TrainingType.LOCAL_LORA, TrainingType.LOCAL_FINE_TUNING})
log = logging.getLogger(__name__)


def register(host: ServiceHost, settings: LoraSettings | None = None) -> None:
    """Wire the job intake, the training worker and the inference API (each as configured)."""
    settings = settings or LoraSettings()
    torch.set_num_threads(settings.torch_threads)
    models = ModelManager(settings)
    deps = Deps(settings, models)

    async def run(ctx: JobContext) -> JobResult:
        return await run_job(ctx, deps)

    # A serving replica (train=false) still takes jobs from Kafka into the work queue, with no
    # worker loop: the queue then holds the backlog a trainer scales on, even at 0 trainers.
    register_worker(host, OWNED, run, concurrency=1 if settings.train else 0)
    register_compensation(host, undo)
    host.add_routes(admin_router(settings))
    if settings.serve:
        _register_api(host, settings, models)


def _register_api(host: ServiceHost, settings: LoraSettings, models: ModelManager) -> None:
    holder: dict[str, Engine] = {}
    holder_tasks: list[asyncio.Task[None]] = []
    core = host.settings
    pools: dict[str, Any] = {}
    keys = KeyStore(
        service_token=core.service_secret,
        static=settings.api_keys,
        required=(
            settings.require_api_key
            if settings.require_api_key is not None
            else core.profile is not Profile.LOCAL
        ),
        pool_of=partial(pools.get, "db"),
    )
    trainable = {"base", "tiny-llama", settings.default_base_model, settings.serve_base_model}
    app = create_app(
        partial(holder.get, "engine"), settings.max_new_tokens, keys, settings.retry_after_s,
        frozenset(m for m in trainable if m),
    )  # fmt: skip
    api = ApiServer(
        app,
        settings.api_host,
        settings.api_port,
        name="inference API (/v1)",
    )

    host.add_routes(status_router(partial(holder.get, "engine")))

    async def start(runtime: Runtime) -> None:
        pools["db"] = runtime.db
        app.state.runtime = runtime  # the fine-tuning routes' database, broker and storage
        await api.start()
        holder_tasks.append(asyncio.create_task(_load_engine(runtime)))

    async def _load_engine(runtime: Runtime) -> None:
        try:
            name = settings.serve_base_model
            await asyncio.to_thread(models.check_fits, name, "serve")
            base = await asyncio.to_thread(models.load_for_serving, name)
            assert runtime.objects is not None
            holder["engine"] = Engine(
                base, runtime.objects, runtime.db, settings.work_dir / "adapters",
                settings.adapter_cache_size, max_batch=settings.max_batch,
                max_queue=settings.max_queue, model_cache_bytes=settings.model_cache_bytes,
                stream_interval_s=settings.stream_interval_ms / 1000,
                decode_threads=settings.decode_threads,
            )  # fmt: skip
            log.info("serving %s", base.name)
        except Exception:
            log.exception("the inference API has no base model; it answers 503")

    async def stop(runtime: Runtime) -> None:
        await api.stop()
        if "engine" in holder:
            await asyncio.to_thread(holder["engine"].close)

    host.after_start(start)
    host.on_stop(stop)


def run() -> None:
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    serve("lora-service", Settings(), register, health_port=HEALTH_PORT)
