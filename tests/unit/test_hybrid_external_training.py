"""EXTERNAL_HYBRID's training stage against an in-memory OpenAI-compatible fine-tuning provider:
the dataset goes up as chat JSONL, the job is followed, a provider that is down is retryable,
and compensation cancels the provider's job."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import httpx

from lorag_api.finetune import FineTuneClient
from lorag_core.contracts import DatasetRef, HybridParameters, JobRequested
from lorag_hybrid.config import FinetuneSettings
from lorag_hybrid.saga.external import ExternalTraining

QA = [{"question": "What is staging called?", "answer": "harbor-seventeen"},
      {"question": "Who is on call?", "answer": "the platform team"}]  # fmt: skip


class Objects:
    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return [f"{prefix}qa.jsonl"]

    def get_bytes(self, bucket: str, key: str, require_digest: bool = True) -> bytes:
        return "\n".join(json.dumps(r) for r in QA).encode()


def context() -> Any:
    request = JobRequested(
        job_id="job-ext", training_type="EXTERNAL_HYBRID", owner="alice",
        datasets=(DatasetRef(uri="s3://lorag-datasets/ext/"),),
        parameters=HybridParameters(minion="ada"),
    )  # fmt: skip
    return SimpleNamespace(request=request, job_id="job-ext",
                           runtime=SimpleNamespace(objects=Objects()))  # fmt: skip


class Provider:
    """Files and jobs in memory; `statuses` is what successive reads of the job say."""

    def __init__(self, statuses: list[str], down: bool = False) -> None:
        self.statuses, self.down, self.calls, self.uploaded = statuses, down, [], b""

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        if self.down:
            raise httpx.ConnectError("connection refused")
        path = request.url.path
        if path.endswith("/files"):
            self.uploaded = request.content
            return httpx.Response(200, json={"id": "file-1", "object": "file"})
        if path.endswith("/events"):
            return httpx.Response(200, json={"data": [{"type": "metrics",
                                  "data": {"step": 3, "train_loss": 1.25}}]})  # fmt: skip
        if path.endswith("/cancel"):
            return httpx.Response(200, json={"id": "ftjob-1", "status": "cancelled"})
        if request.method == "POST":
            assert json.loads(request.content)["training_file"] == "file-1"
            return httpx.Response(200, json={"id": "ftjob-1", "status": "queued"})
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        model = "ft-ada-1:1" if status == "succeeded" else None
        return httpx.Response(200, json={"id": "ftjob-1", "status": status,
                                         "fine_tuned_model": model})  # fmt: skip

    def client(self) -> FineTuneClient:
        return FineTuneClient("http://provider/v1", "key", owner="alice",
                              transport=httpx.MockTransport(self.handle))  # fmt: skip


async def finish(training: ExternalTraining) -> None:
    assert training.task is not None
    await asyncio.wait_for(training.task, 5)


async def test_the_stage_uploads_chat_jsonl_and_follows_the_job_to_its_model():
    provider = Provider(["queued", "running", "succeeded"])
    training = ExternalTraining(context(), FinetuneSettings(poll_s=0.01), "ada", provider.client)
    training.start()
    await finish(training)
    assert training.row["state"] == "SUCCEEDED", training.row
    summary = training.row["result"]["summary"]
    assert summary["ftjob"] == "ftjob-1" and summary["fine_tuned_model"] == "ft-ada-1:1"
    assert summary["loss"] == 1.25 and summary["step"] == 3.0
    assert b'"role": "assistant", "content": "harbor-seventeen"' in provider.uploaded


async def test_a_provider_that_is_down_fails_the_stage_as_retryable():
    provider = Provider(["queued"], down=True)
    training = ExternalTraining(context(), FinetuneSettings(poll_s=0.01), "ada", provider.client)
    training.start()
    await finish(training)
    assert training.row["state"] == "FAILED"
    assert training.row["error"]["code"] == "PROVIDER_UNAVAILABLE"
    assert training.row["error"]["retryable"] is True


async def test_compensation_cancels_the_providers_job():
    provider = Provider(["running"])
    training = ExternalTraining(context(), FinetuneSettings(poll_s=0.01), "ada", provider.client)
    training.start()
    while training.ftjob is None:
        await asyncio.sleep(0.01)
    await training.cancel("the rag stage failed")
    assert ("POST", "/v1/fine_tuning/jobs/ftjob-1/cancel") in provider.calls
    assert training.row["state"] == "CANCELLED"


async def test_a_new_provider_job_is_recorded_before_it_is_followed():
    provider, recorded = Provider(["succeeded"]), []

    async def created(ftjob: str) -> None:
        recorded.append((ftjob, len(provider.calls)))

    training = ExternalTraining(context(), FinetuneSettings(poll_s=0.01), "ada", provider.client,
                                created=created)  # fmt: skip
    training.start()
    await finish(training)
    assert training.row["state"] == "SUCCEEDED"
    assert recorded == [("ftjob-1", 2)]  # after the upload and the create, before any poll


async def test_a_restarted_stage_follows_its_provider_job_without_making_another():
    provider = Provider(["running", "succeeded"])
    training = ExternalTraining(context(), FinetuneSettings(poll_s=0.01), "ada", provider.client,
                                resume="ftjob-1")  # fmt: skip
    training.start()
    await finish(training)
    assert training.row["state"] == "SUCCEEDED", training.row
    assert training.row["result"]["summary"]["ftjob"] == "ftjob-1"
    assert not [c for c in provider.calls if c[0] == "POST"]  # no upload, no second job
