"""The hybrid saga: validate, start the RAG and LoRA stages as sub-jobs in parallel, follow them
as one progress view, evaluate the variants, publish the minion. On failure or cancellation,
compensate in reverse: running sub-jobs cancelled, finished ones asked to remove what they made.

Orchestration only: the stages' work is done by the rag-service and the lora-service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from lorag_api.base import ServiceUrls
from lorag_api.finetune import FineTuneClient
from lorag_core.contracts import (
    ArtifactRef,
    CompensationRequested,
    JobCancelRequested,
    JobRequested,
    JobResult,
)
from lorag_core.db.changes import JobChanges
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import TrainingType
from lorag_core.messaging.broker import publish_event
from lorag_core.metrics import SAGA_COMPENSATIONS
from lorag_core.service.worker import JobCancelled, JobContext, JobFailed
from lorag_core.telemetry import current_traceparent, stage_span
from lorag_hybrid.config import FinetuneSettings, HybridSettings
from lorag_hybrid.saga import store
from lorag_hybrid.saga.external import ExternalTraining
from lorag_hybrid.saga.plan import EVALUATE, LORA, RAG, STAGES, StageView, overall, parameters

log = logging.getLogger(__name__)
WORK_STAGES = [s for s in STAGES if s.training_type is not None]
FORWARDED = {LORA: ("loss", "step"), RAG: ("chunks_per_s",)}  # stage figures the hybrid shows


@dataclass
class Running:
    """A stage's current sub-job."""

    name: str
    job_id: str
    attempt: int


def sub_request(request: JobRequested, stage: str, job_id: str, minion: str) -> JobRequested:
    params = parameters(request)
    stage_params: Any = (
        params.rag.model_copy(update={"kb": params.rag.kb or minion})
        if stage == RAG
        else params.lora.model_copy(update={"adapter": params.lora.adapter or minion})
    )
    plan = next(s for s in STAGES if s.name == stage)
    return JobRequested(
        job_id=job_id,
        training_type=plan.training_type,
        owner=request.owner,
        minion_id=minion,
        datasets=request.datasets,
        parameters=stage_params,
        parent_job_id=request.job_id,
        stage=stage,
    )


async def run_stages(
    ctx: JobContext, settings: HybridSettings, minion: str, changes: JobChanges
) -> dict[str, Any]:
    """Run RAG and LoRA to the end; return each stage's sub-job row. Raises after compensating."""
    return await Saga(ctx, settings, changes, minion).run()


class Saga:
    """One hybrid's work stages: started, followed as one view, retried, compensated."""

    def __init__(
        self, ctx: JobContext, settings: HybridSettings, changes: JobChanges, minion: str
    ) -> None:
        self.ctx, self.settings, self.changes, self.minion = ctx, settings, changes, minion
        self.running: dict[str, Running] = {}  # stage name -> its current sub-job
        self.rows: dict[str, Any] = {}  # sub-job id -> its jobs row, as last read
        # EXTERNAL_HYBRID trains at a fine-tuning provider: stage name -> the current attempt
        self.external: dict[str, ExternalTraining] = {}
        self.trains_externally = ctx.request.resolved.effective is TrainingType.EXTERNAL_HYBRID
        self.provider_jobs: dict[str, tuple[int, str]] = {}  # stage -> (attempt, provider's job)

    async def run(self) -> dict[str, Any]:
        """Stage rows are re-read every `poll_s` for the progress view, and when a stage ends."""
        ctx, settings = self.ctx, self.settings
        async with ctx.runtime.db.connection() as conn:
            known = await store.stages(conn, ctx.job_id)
        self.provider_jobs = {
            name: (row["attempt"], row["provider_job"])
            for name, row in known.items() if row.get("provider_job")
        }  # fmt: skip
        for plan in WORK_STAGES:
            attempt = known[plan.name]["attempt"] if plan.name in known else 1
            self.running[plan.name] = Running(plan.name, plan.job_id(ctx.job_id, attempt), attempt)
            await self._start(self.running[plan.name])
        while True:
            async with ctx.runtime.db.connection() as conn:
                self.rows = await store.sub_jobs(conn, self._job_ids())
            for name, training in self.external.items():
                self.rows[self.running[name].job_id] = training.row
            views = [_view(name, self.rows.get(r.job_id)) for name, r in self.running.items()]
            percent, eta = overall(views)
            succeeded = all(v.state is JobState.SUCCEEDED for v in views)
            await ctx.report(
                JobState.RUNNING,
                stage=_stage_label(views),
                percent=percent * 0.95,
                eta_seconds=eta,
                metrics=self._metrics(views),
                force=succeeded,  # the view always records every stage's end
            )
            if ctx.cancelled.is_set():
                await self._compensate("the hybrid was cancelled")
                raise JobCancelled(ctx.job_id)
            for stage in self.running.values():
                row = self.rows.get(stage.job_id)
                if row is not None and row["state"] in ("FAILED", "CANCELLED"):
                    await self._retry_or_fail(stage, row)
                elif row is not None and _stalled(row, settings.stall_s):
                    reason = f"{stage.name} stage made no progress for {settings.stall_s:.0f} s"
                    await self._compensate(reason)
                    raise JobFailed("STAGE_STALLED", reason, retryable=True)
            if succeeded:
                return {name: self.rows[r.job_id] for name, r in self.running.items()}
            await self.changes.wait(self._job_ids(), settings.poll_s, ended=True)

    def _job_ids(self) -> list[str]:
        return [r.job_id for r in self.running.values()]

    async def _start(self, stage: Running) -> None:
        ctx = self.ctx
        attributes = {"lorag.sub_job_id": stage.job_id, "lorag.stage_attempt": stage.attempt}
        # The sub-job's request is published inside this span: its spans sit under the hybrid's.
        with stage_span(f"saga.start {stage.name}", attributes):
            async with ctx.runtime.db.connection() as conn:
                await store.record_stage(
                    conn, ctx.job_id, stage.name, stage.job_id, stage.attempt,
                    current_traceparent(),
                )  # fmt: skip
            if stage.name == LORA and self.trains_externally:
                self.external[LORA] = self._external(stage)
                self.external[LORA].start()
                return
            # Idempotent by job id: a restarted orchestrator re-publishes and nothing runs twice.
            request = sub_request(ctx.request, stage.name, stage.job_id, self.minion)
            await publish_event(ctx.runtime.broker, request)

    def _external(self, stage: Running) -> ExternalTraining:
        """The stage's training at the provider: the job this attempt made before a restart, if
        it made one, else a new one, recorded as soon as the provider names it."""
        attempt, ftjob = self.provider_jobs.get(stage.name, (0, None))
        settings = FinetuneSettings()  # read once per attempt: the client and the stage share it

        async def created(provider_job: str) -> None:
            async with self.ctx.runtime.db.connection() as conn:
                await store.record_provider_job(
                    conn, self.ctx.job_id, stage.name, stage.attempt, provider_job
                )

        return ExternalTraining(
            self.ctx, settings, self.minion, _provider(self.ctx, settings),
            resume=ftjob if attempt == stage.attempt else None, created=created,
        )  # fmt: skip

    async def _retry_or_fail(self, stage: Running, row: dict[str, Any]) -> None:
        error = row["error"] or {"code": "STAGE_CANCELLED", "message": "cancelled"}
        if error.get("retryable") and stage.attempt <= self.settings.max_retries:
            delay = self.settings.retry_backoff_s * 2 ** (stage.attempt - 1)
            log.warning(
                "%s stage failed (%s); retry %d in %.0f s",
                stage.name,
                error["code"],
                stage.attempt,
                delay,
            )
            await asyncio.sleep(delay)
            stage.attempt += 1
            plan = next(s for s in STAGES if s.name == stage.name)
            stage.job_id = plan.job_id(self.ctx.job_id, stage.attempt)
            await self._start(stage)
            return
        reason = f"{stage.name} stage failed: {error['code']}: {error['message']}"
        await self._compensate(reason)
        raise JobFailed("STAGE_FAILED", reason[:4000], retryable=False)

    async def _compensate(self, reason: str) -> None:
        """Undo in reverse stage order, shielded so a cancellation cannot interrupt it halfway.

        Running sub-jobs are cancelled, and waited for (up to `cancel_wait_s`): one that finished
        its work before it saw the cancellation ends SUCCEEDED, and what it made is undone too.
        """
        ctx = self.ctx

        async def undo() -> None:
            cancelled = []
            for stage in reversed(list(self.running.values())):
                state = (self.rows.get(stage.job_id) or {}).get("state", "QUEUED")
                async with ctx.runtime.db.connection() as conn:
                    first = await store.mark_compensated(conn, ctx.job_id, stage.name)
                if not first:
                    continue
                if stage.name in self.external:
                    # the provider's job is cancelled; a finished model stays at the provider
                    await self.external[stage.name].cancel(reason)
                    continue
                if state == "SUCCEEDED":
                    await self._undo(stage, reason)
                elif state not in ("FAILED", "CANCELLED"):
                    event = JobCancelRequested(
                        job_id=stage.job_id, reason=reason[:500], requested_by="hybrid-orchestrator"
                    )
                    await publish_event(ctx.runtime.broker, event)
                    SAGA_COMPENSATIONS.labels(stage.name, "cancel").inc()
                    log.info("compensating %s stage (%s): cancelled", stage.name, state)
                    cancelled.append(stage)
                # FAILED or CANCELLED: it cleaned up after itself when it ended
            for stage in cancelled:
                if await self._ended_as(stage.job_id) == "SUCCEEDED":
                    await self._undo(stage, reason)

        with stage_span("saga.compensating", {"lorag.reason": reason[:200]}):
            await asyncio.shield(undo())

    async def _undo(self, stage: Running, reason: str) -> None:
        event = CompensationRequested(
            job_id=stage.job_id, parent_job_id=self.ctx.job_id, reason=reason[:2000]
        )
        await publish_event(self.ctx.runtime.broker, event)
        SAGA_COMPENSATIONS.labels(stage.name, "undo").inc()
        log.info("compensating %s stage: undoing what it made", stage.name)

    async def _ended_as(self, job_id: str) -> str:
        """The sub-job's state once it ended, or as it is after `cancel_wait_s` seconds."""
        deadline = time.monotonic() + self.settings.cancel_wait_s
        while True:
            async with self.ctx.runtime.db.connection() as conn:
                row = (await store.sub_jobs(conn, [job_id])).get(job_id)
            state = row["state"] if row else "QUEUED"
            left = deadline - time.monotonic()
            if JobState(state).is_terminal or left <= 0:
                return str(state)
            await self.changes.wait([job_id], min(left, 1.0), ended=True)

    def _metrics(self, views: list[StageView]) -> dict[str, float]:
        """Each stage's percent, and its live figures (training loss, ingestion rate)."""
        figures = {f"{v.name}_percent": round(v.percent, 1) for v in views}
        for name, stage in self.running.items():
            row = self.rows.get(stage.job_id) or {}
            # A fast stage can end between two looks: its summary holds the final figures.
            summary = (row.get("result") or {}).get("summary") or {}
            metrics = summary | (row.get("metrics") or {})
            figures |= {k: float(metrics[k]) for k in FORWARDED.get(name, ()) if k in metrics}
        return figures


def _provider(ctx: JobContext, settings: FinetuneSettings) -> Any:
    """Makes a client of the configured provider (default: the local lora-service's API)."""
    url = settings.base_url or ServiceUrls().lora_openai_url
    key = settings.api_key.get_secret_value() if settings.api_key else None
    token = key or ctx.runtime.settings.service_secret

    def make() -> FineTuneClient:
        return FineTuneClient(url, token, timeout=settings.timeout_s, owner=ctx.request.owner)

    return make


def _view(name: str, row: dict[str, Any] | None) -> StageView:
    if row is None:
        return StageView(name, JobState.QUEUED, 0.0, None)
    return StageView(name, JobState(row["state"]), row["percent"] or 0.0, row["eta_seconds"])


def _stage_label(views: list[StageView]) -> str:
    return ", ".join(f"{v.name} {v.state.value.lower()}" for v in views)[:64]


def _stalled(row: dict[str, Any], stall_s: float) -> bool:
    if JobState(row["state"]).is_terminal:
        return False
    return time.time() - row["updated_at"].timestamp() > stall_s


def artifacts(stage_rows: dict[str, Any]) -> tuple[ArtifactRef, ...]:
    found = []
    for name in (RAG, LORA):
        result = stage_rows[name]["result"] or {}
        found += [ArtifactRef.model_validate(a) for a in result.get("artifacts", [])]
    return tuple(found)


__all__ = ["EVALUATE", "JobResult", "run_stages", "sub_request"]
