"""POST /v1/recommend through `HybridClient`, against a real hybrid-orchestrator and a real
lora-service: an owner's upload in the real S3 is profiled and ranked, estimated on the
lora-service's machine (the orchestrator's own, with a note, once the lora-service is gone);
another owner's dataset is 404, a URI that cannot be an upload or an unknown model is 422."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from lorag_api import Invalid, NotFound
from lorag_api.hybrid import HybridClient, RecommendFor
from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from tests.integration.test_lora_helpers import lora_env
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
ALICE, BOB = "alice", "bob"
QA = [{"question": f"What is fact {i}?", "answer": f"Fact {i} is blue."} for i in range(40)]


@pytest.fixture(scope="module")
def lora(settings, logs_dir, tmp_path_factory):
    """The lora-service, whose machine would train: its admin API only, no model loaded."""
    work = tmp_path_factory.mktemp("lora-recommend")
    env = lora_env(work / "models", work / "work", free_port(), LORAG_LORA_SERVE="false")
    service = start_service("lorag_lora", logs_dir, **env)
    yield service
    if service.process.poll() is None:
        service.stop()


@pytest.fixture(scope="module")
def orchestrator(settings, logs_dir, lora):
    service = start_service(
        "lorag_hybrid", logs_dir, LORAG_HYBRID_WARM_UP="false",
        LORAG_LORA_SERVICE_URL=f"http://127.0.0.1:{lora.port}",
    )  # fmt: skip
    yield service
    service.stop()


@pytest.fixture(scope="module")
def alices_upload(settings) -> str:
    """A Q/A dataset where the gateway puts uploads: under the owner's folder."""
    prefix = f"uploads/{ALICE}/ds-{uuid.uuid4().hex[:12]}/"
    data = "\n".join(json.dumps(r) for r in QA).encode()
    ObjectStore.from_settings(settings.s3).put_bytes("lorag-datasets", prefix + "qa.jsonl", data)
    return f"s3://lorag-datasets/{prefix}"


@pytest.fixture
async def hybrid(settings, orchestrator):
    url = f"http://127.0.0.1:{orchestrator.port}"
    async with HybridClient(url, settings.service_secret) as client:
        yield client


async def test_an_upload_is_ranked_on_the_lora_services_machine(hybrid, lora, alices_upload):
    found = await hybrid.recommend(ALICE, RecommendFor(dataset=alices_upload))
    assert found.dataset == alices_upload and found.profile["records"] == len(QA)
    assert found.resources["source"] == "lora-service" and found.notes == []
    assert found.resources["cpu_cores"] >= 1 and found.resources["memory_gb"] > 0
    types = [r["training_type"] for r in found.recommendations]
    assert {"EXTERNAL_RAG", "LOCAL_LORA"} <= set(types)
    assert found.model == "tiny-llama"


async def test_another_owners_dataset_is_not_found_like_a_missing_one(hybrid, alices_upload):
    with pytest.raises(NotFound) as theirs:
        await hybrid.recommend(BOB, RecommendFor(dataset=alices_upload))
    missing = f"s3://lorag-datasets/uploads/{BOB}/ds-nothing-here/"
    with pytest.raises(NotFound) as absent:
        await hybrid.recommend(BOB, RecommendFor(dataset=missing))
    for refused in (theirs.value, absent.value):
        assert refused.code == "DATASET_NOT_FOUND" and refused.message.startswith("no dataset ")
        assert refused.hint


@pytest.mark.parametrize(
    "dataset",
    ["/home/alice/data", "s3://lorag-artifacts/models/x/", "s3://lorag-datasets/job-1/train.jsonl",
     f"s3://lorag-datasets/uploads/{ALICE}/../{BOB}/x"],
)  # fmt: skip
async def test_a_uri_that_cannot_be_an_upload_is_422(hybrid, dataset):
    with pytest.raises(Invalid) as refused:
        await hybrid.recommend(ALICE, RecommendFor(dataset=dataset))
    assert refused.value.status == 422 and refused.value.errors[0]["loc"] == ["body", "dataset"]


async def test_an_unknown_base_model_is_422(hybrid, alices_upload):
    with pytest.raises(Invalid) as refused:
        await hybrid.recommend(ALICE, RecommendFor(dataset=alices_upload, base_model="nope/x"))
    assert refused.value.errors[0]["loc"] == ["body", "base_model"]
    assert "unknown base model" in refused.value.message


async def test_the_api_wants_the_service_token(settings, orchestrator, alices_upload):
    url = f"http://127.0.0.1:{orchestrator.port}/v1/recommend"
    body = {"dataset": alices_upload}
    assert httpx.post(url, json=body, headers={"X-Lorag-Owner": ALICE}).status_code == 401


async def test_without_the_lora_service_the_estimates_say_whose_machine(
    hybrid, lora, alices_upload
):
    lora.stop()
    found = await hybrid.recommend(ALICE, RecommendFor(dataset=alices_upload))
    assert found.resources["source"] == "hybrid-orchestrator"
    assert len(found.notes) == 1 and "lora-service" in found.notes[0]
    assert found.recommendations
