"""EXTERNAL_HYBRID's training stage, run at an OpenAI-compatible fine-tuning provider.

The dataset's question/answer pairs become chat JSONL, uploaded as a file; a fine-tuning job is
created and followed until it ends. The stage looks to the saga like a sub-job's row (state,
percent, metrics, result, error), so it shares the progress view, the retries and compensation
with the RAG stage. The provider being down is a retryable failure; compensation cancels the
provider's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from lorag_api.finetune import FineTuneClient, ProviderError
from lorag_core.service.worker import JobContext
from lorag_hybrid.config import FinetuneSettings
from lorag_hybrid.evaluation import eval_pairs
from lorag_hybrid.saga.plan import parameters

log = logging.getLogger(__name__)
MAX_PAIRS = 100_000
BASE_LR = 2e-4  # lorag's LoRA learning rate: lr / BASE_LR is the provider's multiplier
STATES = {"validating_files": "VALIDATING", "queued": "QUEUED", "running": "RUNNING",
          "succeeded": "SUCCEEDED", "failed": "FAILED", "cancelled": "CANCELLED"}  # fmt: skip
PERCENT = {"QUEUED": 10.0, "VALIDATING": 15.0, "RUNNING": 50.0, "SUCCEEDED": 100.0}


def chat_jsonl(pairs: list[tuple[str, str]]) -> bytes:
    """(question, answer) pairs as OpenAI's chat fine-tuning format."""
    return "".join(
        json.dumps({"messages": [{"role": "user", "content": q},
                                 {"role": "assistant", "content": a}]}) + "\n"
        for q, a in pairs
    ).encode()  # fmt: skip


def hyperparameters(lora: Any) -> dict[str, Any]:
    """The stage's LoRA parameters in the fine-tuning API's terms, kept within its ranges."""
    return {
        "n_epochs": max(1, min(50, round(lora.epochs))),
        "batch_size": max(1, min(256, lora.batch_size)),
        "learning_rate_multiplier": round(max(0.01, min(10.0, lora.lr / BASE_LR)), 4),
    }


class ExternalTraining:
    """One attempt of the stage: a task that drives the provider and keeps `row` current."""

    def __init__(
        self, ctx: JobContext, settings: FinetuneSettings, minion: str,
        client: Callable[[], FineTuneClient], *, resume: str | None = None,
        created: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:  # fmt: skip
        """`resume`: the provider's job this attempt already created (a restarted orchestrator
        follows it); `created` records a new one before it is followed."""
        self.ctx, self.settings, self.minion, self._client = ctx, settings, minion, client
        self.ftjob: str | None = resume
        self._created = created
        self.row: dict[str, Any] = {"state": "QUEUED", "percent": 0.0, "eta_seconds": None,
                                    "metrics": {}, "result": None, "error": None,
                                    "updated_at": datetime.now(UTC)}  # fmt: skip
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    def _set(self, **changes: Any) -> None:
        self.row = {**self.row, **changes, "updated_at": datetime.now(UTC)}

    async def _run(self) -> None:
        client = self._client()
        try:
            await self._train(client)
        except ProviderError as exc:
            code = "PROVIDER_UNAVAILABLE" if exc.retryable else "PROVIDER_REFUSED"
            self._set(state="FAILED", error={"code": code, "message": exc.message,
                                             "retryable": exc.retryable})  # fmt: skip
        except Exception as exc:  # a bug must fail the stage, not hang the saga
            log.exception("external training failed")
            self._set(state="FAILED", error={"code": "EXTERNAL_TRAINING_FAILED",
                                             "message": f"{type(exc).__name__}: {exc}",
                                             "retryable": False})  # fmt: skip
        finally:
            await client.close()

    async def _train(self, client: FineTuneClient) -> None:
        if self.ftjob is None:
            examples = await self._create(client)
            if examples is None:
                return
        else:
            examples = None
            log.info("%s: following %s at the provider again", self.ctx.job_id, self.ftjob)
        await self._follow(client, examples)

    async def _create(self, client: FineTuneClient) -> int | None:
        """Upload the dataset and create the provider's job; the number of examples, or None
        when the dataset has nothing to fine-tune on (the stage has failed)."""
        request, objects = self.ctx.request, self.ctx.runtime.objects
        assert objects is not None
        pairs = await asyncio.to_thread(eval_pairs, request, objects, MAX_PAIRS)
        if not pairs:
            rag = parameters(request).rag
            self._set(state="FAILED", error={
                "code": "DATASET_INVALID", "retryable": False,
                "message": f"no {rag.question_field}/{rag.answer_field} rows to fine-tune on",
            })  # fmt: skip
            return None
        self._set(state="VALIDATING", percent=5.0)
        uploaded = await client.upload(f"{self.minion}.jsonl", chat_jsonl(pairs))
        lora = parameters(request).lora
        suffix = re.sub(r"[^A-Za-z0-9._-]", "-", self.minion)[:40]
        job = await client.create_job(
            self.settings.model, uploaded["id"], suffix=suffix, seed=lora.seed,
            hyperparameters=hyperparameters(lora),
        )  # fmt: skip
        self.ftjob = str(job["id"])
        if self._created is not None:
            await self._created(self.ftjob)
        log.info("%s: training at the provider as %s", self.ctx.job_id, self.ftjob)
        return len(pairs)

    async def _follow(self, client: FineTuneClient, examples: int | None) -> None:
        """Poll the provider's job until it ends; its model, or why it failed, is the row's."""
        assert self.ftjob is not None
        while True:
            job = await client.job(self.ftjob)
            state = STATES.get(job.get("status", ""), "RUNNING")
            metrics = await self._latest_metrics(client)
            if state == "SUCCEEDED":
                summary = {"ftjob": self.ftjob, "fine_tuned_model": job["fine_tuned_model"],
                           "adapter": job["fine_tuned_model"], "provider": client.base_url,
                           "training_file": job.get("training_file"), "examples": examples,
                           **metrics}  # fmt: skip
                self._set(state=state, percent=100.0, metrics=metrics,
                          result={"artifacts": [], "summary": summary})  # fmt: skip
                return
            if state in ("FAILED", "CANCELLED"):
                message = (job.get("error") or {}).get("message") or f"the provider's job {state}"
                self._set(state="FAILED", error={"code": f"PROVIDER_JOB_{state}",
                                                 "message": f"{self.ftjob}: {message}",
                                                 "retryable": False})  # fmt: skip
                return
            self._set(state=state, percent=PERCENT.get(state, 50.0),
                      metrics={**metrics, "ftjob": self.ftjob})  # fmt: skip
            await asyncio.sleep(self.settings.poll_s)

    async def _latest_metrics(self, client: FineTuneClient) -> dict[str, Any]:
        """The provider's newest metrics event, in the hybrid's names (loss, step)."""
        assert self.ftjob is not None
        for event in await client.events(self.ftjob, limit=20):
            data = event.get("data") or {}
            if event.get("type") == "metrics" and "step" in data:
                found = {"step": float(data["step"])}
                if "train_loss" in data:
                    found["loss"] = float(data["train_loss"])
                return found
        return {}

    async def cancel(self, reason: str) -> None:
        """Stop following the job and cancel it at the provider (compensation)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.ftjob is None or self.row["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return
        client = self._client()
        try:
            await client.cancel(self.ftjob)
            log.info("compensating: cancelled %s at the provider (%s)", self.ftjob, reason)
        except ProviderError as exc:
            log.warning("could not cancel %s at the provider: %s", self.ftjob, exc.message)
        finally:
            await client.close()
        self._set(state="CANCELLED")
