"""The hybrid runner: saga, evaluation, minion, XP."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from lorag_api.base import ServiceUrls
from lorag_core.contracts import JobResult, MinionXpEarned
from lorag_core.db.changes import JobChanges
from lorag_core.domain.job_state import JobState
from lorag_core.messaging.broker import publish_event
from lorag_core.service.worker import JobContext
from lorag_core.telemetry import stage_span
from lorag_hybrid.config import HybridSettings
from lorag_hybrid.evaluation import eval_pairs, profile_of
from lorag_hybrid.recommend import history
from lorag_hybrid.recommend.resources import detect
from lorag_hybrid.routing import VARIANTS, Router
from lorag_hybrid.saga import store
from lorag_hybrid.saga.plan import LORA, RAG, parameters
from lorag_hybrid.saga.runner import artifacts, run_stages
from lorag_hybrid.saga.validation import validate


def make_runner(settings: HybridSettings, router: Router, changes: JobChanges) -> Any:
    async def run(ctx: JobContext) -> JobResult:
        return await run_hybrid(ctx, settings, router, changes)

    return run


async def run_hybrid(
    ctx: JobContext,
    settings: HybridSettings,
    router: Router,
    changes: JobChanges,
) -> JobResult:
    """Validate, run the stages, then evaluate each variant through the services' APIs."""
    started = time.monotonic()
    request, objects = ctx.request, ctx.runtime.objects
    assert objects is not None
    with stage_span("saga.validating", {"lorag.datasets": len(request.datasets)}):
        await validate(request, objects, await asyncio.to_thread(detect))
    minion_name = parameters(request).minion or request.minion_id or request.job_id
    with stage_span("saga.stages", {"lorag.minion": minion_name}):
        stage_rows = await run_stages(ctx, settings, minion_name, changes)
    await ctx.report(JobState.RUNNING, stage="evaluate", percent=95.0, force=True)
    with stage_span("saga.evaluating") as span:
        result = await _evaluate(ctx, settings, router, minion_name, stage_rows, started)
        span.set_attributes({"lorag.eval_pairs": result.summary["eval_pairs"],
                             "lorag.best_variant": result.summary["best_variant"]})  # fmt: skip
    return result


async def _evaluate(
    ctx: JobContext,
    settings: HybridSettings,
    router: Router,
    minion_name: str,
    stage_rows: dict[str, Any],
    started: float,
) -> JobResult:
    """Score each variant through the services' APIs, save the minion, publish its XP."""
    request, objects = ctx.request, ctx.runtime.objects
    assert objects is not None
    rag_summary, lora_summary = (
        stage_rows[RAG]["result"]["summary"],
        stage_rows[LORA]["result"]["summary"],
    )
    minion: dict[str, Any] = {
        "name": minion_name,
        "owner": request.owner,
        "job_id": request.job_id,
        "training_type": request.resolved.effective.value,
        "kb": parameters(request).rag.kb or minion_name,
        "adapter": lora_summary.get("fine_tuned_model")
        or f"{lora_summary['adapter']}:{lora_summary['version']}",
        "llm": {
            "rag": "base" if request.resolved.effective.runs_locally else "external",
            "lora_api": ServiceUrls().lora_openai_url,
            **{k: lora_summary[k] for k in ("ftjob", "fine_tuned_model", "provider")
               if k in lora_summary},
        },
    }  # fmt: skip
    pairs = await asyncio.to_thread(eval_pairs, request, objects, settings.eval_pairs)
    evaluation = await router.evaluate(minion, pairs, embed=True)
    scores = evaluation.scores
    base = await router.base_score(minion, pairs) if pairs else 0.0
    # ties go to the variant that only quotes its sources (VARIANTS' order)
    best = min(VARIANTS, key=lambda v: (-scores[v], VARIANTS.index(v)))
    dataset = await asyncio.to_thread(profile_of, request, objects)
    saved = {**minion, "scores": scores, "best_variant": best,
             "evaluations": evaluation.questions}  # fmt: skip
    async with ctx.runtime.db.connection() as conn:
        await store.save_minion(conn, saved)
        await history.record(conn, request.job_id, dataset, scores, time.monotonic() - started)
    xp = xp_event(
        request,
        minion_name,
        rag_summary,
        lora_summary,
        scores[best] - base,
        scores[best],
        time.monotonic() - started,
    )
    await publish_event(ctx.runtime.broker, xp)
    return JobResult(
        artifacts=artifacts(stage_rows),
        summary={
            "minion": minion_name,
            "best_variant": best,
            "eval_pairs": len(pairs),
            **{f"score_{v.replace('+', '_')}": s for v, s in scores.items()},
            "base_model_score": base,
            "kb": minion["kb"],
            "adapter": minion["adapter"],
            **{k: lora_summary[k] for k in ("ftjob", "fine_tuned_model") if k in lora_summary},
        },
    )


def xp_event(
    request: Any,
    minion: str,
    rag: dict[str, Any],
    lora: dict[str, Any],
    gain: float,
    best: float,
    seconds: float,
) -> MinionXpEarned:
    """Work measured by the stages and the improvement measured by the evaluation, as XP."""
    chunks = float(rag.get("chunks", 0))
    return MinionXpEarned(
        minion_id=minion,
        job_id=request.job_id,
        training_type=request.resolved.effective,
        work={
            "chunks": chunks,
            "training_steps": float(lora.get("step", 0)),
            "seconds": round(seconds, 1),
        },
        improvement={
            "best_variant_score": best,
            "over_base_model": round(gain, 4),
            "hit_rate": float(rag.get("hit_rate", 0.0)),
        },
        xp=int(10 * chunks**0.5 + 100 * max(0.0, gain)),
    )
