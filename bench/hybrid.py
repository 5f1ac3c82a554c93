"""Saga overhead: a hybrid's wall time against its critical path run alone.

The estimator's benchmark, which lived here, is bench/estimator.py (it needs no servers).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from bench.report import Figure, at_most, cpu_seconds, figure
from lorag_core.settings import Settings

ROUNDS = 3  # saga overhead: best of


async def run(settings: Settings, work: Path) -> list[Figure]:
    return await saga_overhead(settings, work)


async def saga_overhead(settings: Settings, work: Path) -> list[Figure]:
    """Hybrid wall time vs its critical path run alone: the longer of its RAG and LoRA stages,
    each submitted as a job of its own. Evaluation is switched off so only the saga is timed.

    Each stage service runs its default torch thread count (issue 17: "in the default
    configuration, not only with one-thread stages"): on a 2-core machine the two stages then
    compete for the cores while both compute, and the figure includes that contention. Services
    are warmed up with a small job each first, and each figure is the best of ROUNDS runs: the
    machine is noisy.
    """
    from lorag_core.contracts import (
        DatasetRef,
        HybridParameters,
        JobRequested,
        LoraParameters,
        RagParameters,
    )
    from lorag_core.storage import ObjectStore
    from lorag_local.stack import free_port
    from lorag_lora.tiny import ensure_tiny_llama
    from tests.integration.test_lora_helpers import lora_env, start_lora
    from tests.support.db import fetch_all, wait_for_job
    from tests.support.kafka import publish_raw
    from tests.support.processes import start_service

    logs, api = work / "logs", free_port()
    chroma = {"LORAG_CHROMA_PATH": str(work / "chroma")}
    models_dir = work / "models"
    await asyncio.to_thread(ensure_tiny_llama, models_dir)
    started = [
        await asyncio.to_thread(start_service, "lorag_migration", logs),
        await asyncio.to_thread(
            start_lora, logs, default_threads(lora_env(models_dir, work / "lora", api))
        ),
        await asyncio.to_thread(start_service, "lorag_rag", logs, **chroma),
        await asyncio.to_thread(
            start_service,
            "lorag_hybrid",
            logs,
            **chroma,
            LORAG_HYBRID_LORA_API=f"http://127.0.0.1:{api}/v1",
            LORAG_HYBRID_EVAL_PAIRS="0",
        ),
    ]
    try:
        objects = ObjectStore.from_settings(settings.s3)
        prefix = f"bench-saga-{uuid.uuid4().hex[:8]}"
        text = "\n\n".join(f"Fact {i}: part {i} lives in bin {i % 9}." for i in range(400))
        objects.put_bytes("lorag-datasets", f"{prefix}/notes.md", text.encode())
        ref = (DatasetRef(uri=f"s3://lorag-datasets/{prefix}/"),)
        rag = RagParameters(chunk_tokens=64, chunk_overlap=8)
        lora = LoraParameters(max_steps=60, batch_size=8, max_seq_len=128)

        stage_services = [started[i].process.pid for i in (1, 2)]  # the lora- and rag-service

        async def timed(
            training_type: str, params: Any, job_id: str | None = None
        ) -> tuple[float, float]:
            """Seconds from request to SUCCEEDED, and the stage services' CPU seconds meanwhile."""
            job_id = job_id or f"{prefix}-{uuid.uuid4().hex[:6]}"
            event = JobRequested(
                job_id=job_id, training_type=training_type, datasets=ref, parameters=params
            )
            cpu = cpu_seconds(*stage_services)
            begin = time.perf_counter()
            await publish_raw(settings.kafka.bootstrap_servers, event.topic, event.to_bytes())
            await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=900)
            return time.perf_counter() - begin, cpu_seconds(*stage_services) - cpu

        def named(params: Any, field: str) -> Any:
            return params.model_copy(update={field: f"{prefix}-{uuid.uuid4().hex[:6]}"})

        await timed("EXTERNAL_RAG", named(rag, "kb"))  # warm-up: consumer groups, caches
        await timed("LOCAL_LORA", named(lora.model_copy(update={"max_steps": 2}), "adapter"))
        alone, hybrid, inside, shared, stages = [], [], [], [], []
        for _ in range(ROUNDS):
            rag_s, rag_cpu = await timed("EXTERNAL_RAG", named(rag, "kb"))
            lora_s, lora_cpu = await timed("LOCAL_LORA", named(lora, "adapter"))
            alone.append(max(rag_s, lora_s))
            # Run together on this machine, the stages share its cores: if sharing costs the
            # longer stage exactly the shorter one's CPU seconds spread over the cores, the
            # hybrid ends at `shared`. A model of contention, not a bound: informational.
            long_s, short_cpu = (lora_s, rag_cpu) if lora_s >= rag_s else (rag_s, lora_cpu)
            shared.append(long_s + short_cpu / CORES)
            stages.append({"rag_s": rag_s, "rag_cpu_s": rag_cpu, "lora_s": lora_s,
                           "lora_cpu_s": lora_cpu})  # fmt: skip
            saga = f"{prefix}-h{uuid.uuid4().hex[:6]}"
            params = named(HybridParameters(rag=rag, lora=lora), "minion")
            hybrid.append((await timed("LOCAL_HYBRID", params, saga))[0])
            inside.append(await longest_stage(settings.postgres_dsn, saga, fetch_all))
    finally:
        for service in reversed(started):
            await asyncio.to_thread(service.stop)
    best = min(range(ROUNDS), key=lambda i: hybrid[i])
    runs = {"hybrid": rounded(hybrid), "alone": rounded(alone), "shared": rounded(shared)}
    # Target: issue 6 ("Saga overhead ... Target <= 5% over"), restated in issue 17. The saga's
    # own cost against its longest stage inside the same run has no target: informational.
    return [
        figure("saga_overhead.seconds", hybrid[best], "s", baseline=min(alone),
               baseline_is="critical path alone (the longer stage as its own job)",
               target=at_most(1.05, of="ratio", issue=6), runs=runs),
        figure("saga_overhead.orchestration_seconds", hybrid[best], "s", baseline=inside[best],
               baseline_is="the hybrid's longest stage, request to end, inside the same run",
               target=None),
        figure("saga_overhead.shared_cores_seconds", hybrid[best], "s", baseline=shared[best],
               baseline_is=f"the longer stage alone plus the shorter one's CPU seconds over "
               f"{CORES} cores (what sharing the cores costs it), same round",
               target=None, runs=runs,
               stages=[{k: round(v, 2) for k, v in s.items()} for s in stages]),
    ]  # fmt: skip


CORES = len(os.sched_getaffinity(0))


def default_threads(env: dict[str, str]) -> dict[str, str]:
    """The services' own torch thread counts: the test helpers pin one thread, the bench not."""
    return {k: v for k, v in env.items() if not k.endswith("_TORCH_THREADS")}


def rounded(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]


async def longest_stage(dsn: str, job_id: str, fetch_all: Any) -> float:
    """Seconds from the recorded request to the end of the hybrid's slowest sub-job."""
    rows = await fetch_all(
        dsn,
        "SELECT max(extract(epoch FROM finished_at - created_at)) AS s FROM jobs"
        " WHERE parent_job_id = %s",
        job_id,
    )
    return float(rows[0]["s"])
