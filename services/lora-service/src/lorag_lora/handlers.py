"""The runner of LOCAL_LORA and LOCAL_FINE_TUNING jobs: read, check, train, store, register.

Delivery: the shared worker runs a job at least once (again after a crash, with attempt > 1).
Each step is idempotent by job id: training resumes from the job's last checkpoint, the adapter
version is the job's own, and adapter.created goes out once (recorded in Postgres).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from opentelemetry import trace

from lorag_core.contracts import ArtifactRef, FineTuningParameters, JobResult
from lorag_core.domain.job_state import JobState
from lorag_core.metrics import LORA_TOKENS, LORA_TOKENS_PER_S
from lorag_core.service.worker import JobCancelled, JobContext, JobFailed
from lorag_core.storage import ObjectStore
from lorag_core.telemetry import stage_span
from lorag_lora import publishing
from lorag_lora.adapters import artifacts, registry
from lorag_lora.adapters.datasets import DatasetUnavailable, read_examples
from lorag_lora.adapters.models import BaseModel, ModelError, ModelManager
from lorag_lora.checkpoints import CheckpointWriter
from lorag_lora.config import LoraSettings
from lorag_lora.domain.architectures import TargetModulesMissing
from lorag_lora.domain.batching import (
    SequenceTooLong,
    TokenRow,
    encode_all,
    packed_rows,
    split,
)
from lorag_lora.domain.datasets import DatasetInvalid, Example
from lorag_lora.training import Plan, TrainingStopped, train
from lorag_lora.tuning import prepare_model

REPORT_EVERY_S = 0.5


@dataclass
class Deps:
    """What the runner needs besides the job: settings and the shared model manager."""

    settings: LoraSettings
    models: ModelManager


async def run_job(ctx: JobContext, deps: Deps) -> JobResult:
    """Run one training job to its result; JobFailed carries the code people see."""
    params: Any = ctx.request.effective_parameters
    full = isinstance(params, FineTuningParameters)
    objects = ctx.runtime.objects
    assert objects is not None
    if not full:
        done = await publishing.if_already_stored(ctx)
        if done is not None:
            return done
    if not full:
        await _check_name_free(ctx, params.adapter or ctx.job_id)
    # The checkpoint lookup (S3 round trips) runs while the model and data are prepared.
    resuming = asyncio.ensure_future(
        asyncio.to_thread(artifacts.load_checkpoint, objects, ctx.job_id)
    )
    try:
        with stage_span("lora.loading", {"lorag.base_model": params.base_model}) as span:
            base, data, model = await _load(ctx, deps, params, full)
            span.set_attributes({"lorag.examples": len(data.rows) + len(data.eval_rows),
                                 "lorag.truncated": data.truncated})  # fmt: skip
    finally:
        await _settled(resuming)
    resume = resuming.result()
    message = "; ".join(data.notes) or None
    if resume is not None:
        message = f"resuming from the checkpoint at step {resume[0]}"
    await ctx.report(JobState.RUNNING, stage="training", percent=0.0, message=message, force=True)
    plan = Plan(
        lr=params.lr,
        batch_size=params.batch_size,
        seed=params.seed,
        epochs=params.epochs,
        max_steps=params.max_steps,
        batching=deps.settings.batching,
        eval_every=deps.settings.eval_every,
        checkpoint_every=deps.settings.checkpoint_every,
        pad_id=base.tokenizer.pad_token_id,
    )
    writer = CheckpointWriter(partial(artifacts.save_checkpoint, objects, ctx.job_id))
    hooks = JobHooks(ctx, asyncio.get_running_loop(), writer)
    attributes = {"lorag.rows": len(data.rows), "lorag.batch_size": params.batch_size,
                  "lorag.resumed_at_step": resume[0] if resume else 0}  # fmt: skip
    with stage_span("lora.training", attributes) as span:
        try:
            outcome = await asyncio.to_thread(
                train, model, data.rows, data.eval_rows, plan, hooks, resume and resume[1]
            )
        except BaseException as exc:
            await _closed(writer, failing=True)
            if isinstance(exc, TrainingStopped):
                raise JobCancelled(ctx.job_id) from None
            raise
        await _closed(writer, failing=False)
        span.set_attributes({f"lorag.{k}": v for k, v in outcome.metrics.items()
                             if k in ("step", "loss", "tokens_per_s", "tokens")})  # fmt: skip
    metrics = {
        k: v
        for k, v in outcome.metrics.items()
        if k in ("loss", "eval_loss", "perplexity", "tokens", "tokens_per_s", "step")
    }
    metrics["truncated_examples"] = float(data.truncated)
    await ctx.report(stage="storing", percent=99.0, metrics=metrics, force=True)
    with stage_span("lora.storing", {"lorag.full_model": full}):
        with tempfile.TemporaryDirectory(prefix="lorag-out-") as tmp:
            await asyncio.to_thread(model.save_pretrained, tmp)
            if full:
                result = await _store_model(ctx, objects, base, Path(tmp), metrics)
            else:
                result = await publishing.store_and_publish(ctx, base, params, Path(tmp), metrics)
        await asyncio.to_thread(artifacts.drop_checkpoints, objects, ctx.job_id)
    return result


async def _load(ctx: JobContext, deps: Deps, params: Any, full: bool) -> tuple[Any, Any, Any]:
    """Read the dataset, check and load the base model, tokenise and batch, wrap for training."""
    objects = ctx.runtime.objects
    assert objects is not None
    try:
        await ctx.report(JobState.VALIDATING, stage="reading dataset", force=True)
        examples = await asyncio.to_thread(read_examples, objects, ctx.request.datasets)
        await ctx.report(stage="checking base model", force=True)
        n_params = await asyncio.to_thread(
            deps.models.check_fits, params.base_model, "full" if full else "lora"
        )
        if full and n_params > deps.settings.max_fine_tuning_params:
            raise JobFailed(
                "FINE_TUNING_TOO_LARGE",
                f"full fine-tuning is limited to {deps.settings.max_fine_tuning_params:,} "
                f"parameters and this model has {n_params:,}; train a LOCAL_LORA adapter "
                "instead, or raise LORAG_LORA_MAX_FINE_TUNING_PARAMS",
            )
        base = await asyncio.to_thread(deps.models.load, params.base_model)
        # Copying the model and tokenising are independent: side by side, off the event loop.
        preparing = asyncio.ensure_future(asyncio.to_thread(prepare_model, base, params, full))
        try:
            data = await asyncio.to_thread(_prepare_data, examples, base, params, deps.settings)
        finally:
            await _settled(preparing)
        model = preparing.result()
    except (DatasetUnavailable, ModelError) as exc:
        raise JobFailed(exc.code, exc.message) from None
    except DatasetInvalid as exc:
        raise JobFailed("DATASET_INVALID", str(exc)) from None
    except SequenceTooLong as exc:
        raise JobFailed("SEQUENCE_TOO_LONG", str(exc)) from None
    except TargetModulesMissing as exc:
        raise JobFailed("TARGET_MODULES_NOT_FOUND", str(exc)) from None
    return base, data, model


async def _closed(writer: CheckpointWriter, *, failing: bool) -> None:
    """Wait for the last checkpoint store; its error counts only if the job is not already
    failing for another reason."""
    try:
        await asyncio.to_thread(writer.close)
    except Exception:
        if not failing:
            raise


async def _settled(future: asyncio.Future[Any]) -> None:
    """Wait for a side task to end (a thread cannot be cancelled); its error is read by the
    caller through result(), or dropped when the caller already fails for another reason."""
    await asyncio.wait([future])
    if not future.cancelled():
        future.exception()  # marks it retrieved: no "never retrieved" warning when dropped


@dataclass
class Prepared:
    rows: list[TokenRow]
    eval_rows: list[TokenRow]
    truncated: int
    notes: list[str]


async def _check_name_free(ctx: JobContext, name: str) -> None:
    """Refuse before training, not after: another owner's adapter name cannot get a version."""
    async with ctx.runtime.db.connection() as conn:
        try:
            await registry.ensure_name_free(conn, name, ctx.request.owner)
        except registry.NameTaken as exc:
            raise JobFailed("ADAPTER_OWNED_BY_OTHER", str(exc)) from None


def _prepare_data(
    examples: list[Example], base: BaseModel, params: Any, settings: LoraSettings
) -> Prepared:
    """Split, tokenise and batch; applies the long-sequence policy and says what it did."""
    notes = []
    limit = int(getattr(base.model.config, "max_position_embeddings", params.max_seq_len))
    max_len = params.max_seq_len
    if max_len > limit:
        if settings.long_sequences == "fail":
            raise SequenceTooLong(f"max_seq_len={max_len} exceeds the model's {limit} positions")
        notes.append(f"max_seq_len {max_len} lowered to the model's limit of {limit}")
        max_len = limit
    train_ex, eval_ex = split(examples, params.eval_ratio, params.seed)
    enc = base.encoder()
    rows, cut = encode_all(train_ex, enc, max_len, settings.long_sequences)
    eval_rows, cut_eval = encode_all(eval_ex, enc, max_len, settings.long_sequences)
    if cut + cut_eval:
        notes.insert(0, f"truncated {cut + cut_eval} examples to {max_len} tokens")
    if settings.batching == "pack":
        rows, eval_rows = (
            packed_rows(rows, max_len, params.seed),
            packed_rows(eval_rows, max_len, 0),
        )
    return Prepared(rows, eval_rows, cut + cut_eval, notes)


async def _store_model(ctx: JobContext, objects: ObjectStore, base: BaseModel, folder: Path,
                       metrics: dict[str, float]) -> JobResult:  # fmt: skip
    """Upload the fine-tuned model and register it (kind model, named after the job) so the
    OpenAI API serves it as `model=<job id>`."""
    base.tokenizer.save_pretrained(folder)
    uri, weights = await asyncio.to_thread(artifacts.store_model, objects, folder, ctx.job_id)
    async with ctx.runtime.db.connection() as conn:
        version = await registry.reserve_version(conn, ctx.job_id, ctx.job_id, ctx.request.owner)
        await registry.mark_ready(
            conn, ctx.job_id, version, kind="model", base_model=base.name,
            base_model_revision=base.revision, uri=uri, sha256=weights.sha256,
            size_bytes=weights.size, metrics=metrics,
        )  # fmt: skip
    return JobResult(
        artifacts=(
            ArtifactRef(kind="model", uri=uri, sha256=weights.sha256, size_bytes=weights.size),
        ),
        summary={"base_model": base.name, "model": ctx.job_id, "version": version, **metrics},
    )


class JobHooks:
    """The training thread's view of the job: throttled progress, cancellation, checkpoints."""

    def __init__(self, ctx: JobContext, loop: asyncio.AbstractEventLoop, writer: CheckpointWriter):
        self.ctx, self.loop, self.writer, self._last = ctx, loop, writer, 0.0
        self._tokens = 0.0

    def progress(self, figures: dict[str, float]) -> None:
        LORA_TOKENS.inc(figures.get("tokens", 0.0) - self._tokens)
        self._tokens = figures.get("tokens", 0.0)
        LORA_TOKENS_PER_S.set(figures["tokens_per_s"])
        now = time.monotonic()
        if now - self._last < REPORT_EVERY_S and figures["percent"] < 100:
            return
        self._last = now
        metrics = {k: v for k, v in figures.items() if k not in ("percent", "eta_seconds")}
        # The training span (current in this thread) gets the step and loss at each report.
        trace.get_current_span().add_event(
            "training step", {"step": int(figures["step"]), "loss": figures["loss"]}
        )
        report = self.ctx.report(
            stage="training",
            percent=min(98.0, figures["percent"]),
            eta_seconds=figures["eta_seconds"],
            metrics=metrics,
            force=True,
        )
        asyncio.run_coroutine_threadsafe(report, self.loop)

    def should_stop(self) -> bool:
        return self.ctx.cancelled.is_set()

    def save_checkpoint(self, step: int, blob: bytes) -> None:
        self.writer.submit(step, blob)  # stored on the writer's thread: training goes on
