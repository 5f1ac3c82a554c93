"""LOCAL_LORA end to end: train on the tiny LLaMA, register, announce, serve with hot-swapping."""

from __future__ import annotations

import hashlib
import json

import pytest

from lorag_core.storage import ObjectStore
from tests.integration import test_lora_helpers as helpers
from tests.integration.test_lora_helpers import FAST, chat, http, jsonl, pairs, submit
from tests.support.db import fetch_all, wait_for_job
from tests.support.topic_log import read_whole_topic

pytestmark = pytest.mark.integration
TIMEOUT = 180
lora, tiny_models = helpers.lora, helpers.tiny_models  # the module's fixtures


@pytest.fixture(scope="module")
async def tone_a(settings, tracker, lora):
    """An adapter trained to answer 'blue sky blue'."""
    params = {**FAST, "adapter": "tone-a"}
    job_id = await submit(settings, jsonl(pairs("blue sky blue")), params=params)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=TIMEOUT)
    return job


async def test_a_lora_job_ends_succeeded_with_a_registered_stored_adapter(settings, tone_a):
    summary = tone_a["result"]["summary"]
    assert summary["adapter"] == "tone-a" and summary["version"] >= 1
    (row,) = await fetch_all(
        settings.postgres_dsn,
        "SELECT * FROM lora_adapters WHERE job_id = %s",
        tone_a["job_id"],
    )
    assert row["status"] == "ready" and row["published_at"] is not None
    objects = ObjectStore.from_settings(settings.s3)
    prefix = f"tone-a/v{row['version']}/"
    weights = objects.get_bytes("lorag-adapters", prefix + "adapter_model.safetensors")
    digest = hashlib.sha256(weights).hexdigest()
    assert digest == row["sha256"] == tone_a["result"]["artifacts"][0]["sha256"]
    manifest = json.loads(objects.get_bytes("lorag-adapters", prefix + "manifest.json"))
    assert manifest["sha256"] == row["sha256"]
    assert manifest["base_model_revision"] == row["base_model_revision"]
    assert manifest["lora_config"]["target_modules"] == ["q_proj", "v_proj"]
    assert manifest["training_config"]["max_steps"] == 30 and "eval_loss" in manifest["metrics"]
    progress = await fetch_all(
        settings.postgres_dsn,
        "SELECT metrics FROM job_progress WHERE job_id = %s AND state = 'RUNNING'",
        tone_a["job_id"],
    )
    keys = set().union(*(p["metrics"] for p in progress))
    assert {"step", "loss", "eval_loss", "tokens_per_s", "perplexity"} <= keys


async def test_adapter_created_is_published_once(settings, tone_a):
    # The whole topic up to its end, not up to a first match: only then can a duplicate show.
    # adapter.created goes out before the job's result, so the end offsets cover this job's.
    events = await read_whole_topic(settings.kafka.bootstrap_servers, "adapter.created")
    version = tone_a["result"]["summary"]["version"]
    of_this_job = [e for e in events if e.get("job_id") == tone_a["job_id"]]
    of_this_version = [
        e for e in events if (e.get("adapter_name"), e.get("version")) == ("tone-a", version)
    ]
    assert len(of_this_job) == 1 and of_this_version == of_this_job, events
    (event,) = of_this_job
    assert event["sha256"] == tone_a["result"]["artifacts"][0]["sha256"]


@pytest.fixture(scope="module")
async def tone_b(settings, tracker, lora, tone_a):
    """A second adapter, answering 'red rose red'."""
    params = {**FAST, "adapter": "tone-b"}
    job_id = await submit(settings, jsonl(pairs("red rose red", seed=1)), params=params)
    return await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=TIMEOUT)


async def test_served_outputs_differ_with_the_adapter_and_equal_the_base_without(lora, tone_a):
    base = chat(lora, "base")
    assert chat(lora, "base") == base  # greedy: deterministic
    with_a = chat(lora, "tone-a")
    assert with_a != base
    assert "blue" in with_a
    assert chat(lora, "base") == base  # loading an adapter leaves the base as it was
    version = tone_a["result"]["summary"]["version"]
    assert chat(lora, f"tone-a:{version}") == with_a == chat(lora, "tone-a@latest")


async def test_two_adapters_alternate_correctly_across_requests(lora, tone_a, tone_b):
    first = {m: chat(lora, m) for m in ("base", "tone-a", "tone-b")}
    assert len(set(first.values())) == 3
    for model in ("tone-b", "tone-a", "base", "tone-a", "tone-b", "base", "tone-b"):
        assert chat(lora, model) == first[model], model
    _, listing = http(lora, "GET", "/v1/models")
    ids = {m["id"] for m in listing["data"]}
    assert {"base", "tone-a@latest", "tone-b@latest"} <= ids


async def test_streaming_yields_the_same_text_as_a_whole_answer(lora, tone_a):
    whole = chat(lora, "tone-a")
    status, raw = http(
        lora,
        "POST",
        "/v1/chat/completions",
        {
            "model": "tone-a",
            "stream": True,
            "max_tokens": 12,
            "messages": [{"role": "user", "content": "What colour is the sky?"}],
        },
    )
    assert status == 200
    datas = [line[5:].strip() for line in raw.splitlines() if line.startswith("data:")]
    assert datas[-1] == "[DONE]"
    pieces = [json.loads(d)["choices"][0]["delta"].get("content", "") for d in datas[:-1]]
    assert "".join(pieces) == whole


async def test_unknown_adapter_is_a_404_and_a_bad_name_a_400(lora):
    hi = [{"role": "user", "content": "hi"}]
    status, body = http(lora, "POST", "/v1/chat/completions", {"model": "nobody", "messages": hi})
    assert status == 404 and body["error"]["code"] == "model_not_found"
    status, body = http(lora, "POST", "/v1/chat/completions", {"model": "x:zero", "messages": hi})
    assert status == 400
