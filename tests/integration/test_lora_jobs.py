"""LoRA and fine-tuning jobs: legacy types, full fine-tuning, refusals and bad input."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from lorag_api.lora import LoraClient
from lorag_core.storage import ObjectStore
from tests.integration import test_lora_helpers as helpers
from tests.integration.test_lora_helpers import FAST, chat, http, jsonl, pairs, submit
from tests.support.db import fetch_all, wait_for_job
from tests.support.gateway import start_gateway

pytestmark = pytest.mark.integration
TIMEOUT = 180
lora, tiny_models = helpers.lora, helpers.tiny_models  # the module's fixtures


def config_only_model(folder, **sizes) -> str:
    """A model folder with a config and no weights: enough for the size checks that refuse it."""
    from transformers import LlamaConfig

    folder.mkdir(parents=True, exist_ok=True)
    LlamaConfig(**sizes).save_pretrained(folder)
    return str(folder)


async def failed_with(settings, job_id: str) -> dict:
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=TIMEOUT)
    return job["error"]


async def test_a_legacy_lora_job_runs_as_local_lora(settings, tracker, lora):
    job_id = await submit(settings, jsonl(pairs("legacy")), training_type="LORA", params=FAST)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=TIMEOUT)
    assert job["requested_type"] == "LORA" and job["effective_type"] == "LOCAL_LORA"
    assert job["result"]["summary"]["adapter"] == job_id  # default name: the job id


async def test_fine_tuning_of_the_small_model_stores_the_model(settings, tracker, lora):
    params = {k: v for k, v in FAST.items() if k != "lr"} | {"max_steps": 10, "lr": 1e-3}
    data = b"\n\n".join(
        p.encode() for p in ["The sky is blue today."] * 6 + ["Grass is green."] * 6
    )
    job_id = await submit(
        settings, data, training_type="LOCAL_FINE_TUNING", params=params, filename="corpus.txt"
    )
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=TIMEOUT)
    (artifact,) = job["result"]["artifacts"]
    assert artifact["kind"] == "model" and artifact["uri"].endswith(f"models/{job_id}/")
    objects = ObjectStore.from_settings(settings.s3)
    keys = set(objects.list_keys("lorag-artifacts", f"models/{job_id}/"))
    assert f"models/{job_id}/model.safetensors" in keys and f"models/{job_id}/config.json" in keys
    # Registered like an adapter (named after the job) and served as a whole model.
    assert job["result"]["summary"]["model"] == job_id
    assert isinstance(chat(lora, job_id), str)
    _, listing = http(lora, "GET", "/v1/models")
    assert {"id": job_id, "kind": "model"}.items() <= next(
        m for m in listing["data"] if m["id"] == job_id
    ).items()


async def test_fine_tuning_above_the_limit_is_refused_with_the_reason(
    settings, tracker, lora, tmp_path
):
    big = config_only_model(
        tmp_path / "mid",
        hidden_size=1024,
        intermediate_size=2816,
        num_hidden_layers=12,
        num_attention_heads=8,
        vocab_size=32000,
    )
    job_id = await submit(
        settings, jsonl(pairs("x")), training_type="FINE_TUNING", params={"base_model": big}
    )
    error = await failed_with(settings, job_id)
    assert error["code"] == "FINE_TUNING_TOO_LARGE"
    assert "parameters" in error["message"] and "LOCAL_LORA" in error["message"]


async def test_a_model_that_does_not_fit_in_memory_is_refused(settings, tracker, lora, tmp_path):
    huge = config_only_model(
        tmp_path / "huge",
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=32000,
    )
    job_id = await submit(settings, jsonl(pairs("x")), params={"base_model": huge})
    error = await failed_with(settings, job_id)
    assert error["code"] == "MODEL_TOO_LARGE" and "GiB" in error["message"]


@pytest.mark.parametrize(
    ("data", "params", "code", "words"),
    [
        (jsonl([{"question": "q only"}]), {}, "DATASET_INVALID", "found fields ['question']"),
        (b"not json\n", {}, "DATASET_INVALID", "line 1 is not JSON"),
        (jsonl(pairs("x")), {"target_modules": ["wq"]}, "TARGET_MODULES_NOT_FOUND", "q_proj"),
        (jsonl(pairs("x")), {"base_model": "/nowhere/model"}, "BASE_MODEL_NOT_FOUND", "/nowhere"),
    ],
    ids=["missing-fields", "not-json", "unknown-targets", "missing-base"],
)
async def test_bad_input_fails_with_a_clear_error(
    settings, tracker, lora, data, params, code, words
):
    job_id = await submit(settings, data, params={**FAST, **params})
    error = await failed_with(settings, job_id)
    assert error["code"] == code and words in error["message"], error
    assert chat(lora, "base")  # nothing else affected: the service still answers


async def test_sequences_beyond_the_model_limit_are_truncated_and_reported(settings, tracker, lora):
    long = {"instruction": "Tell a long story.", "response": " ".join(["blue"] * 900)}
    job_id = await submit(
        settings,
        jsonl([*pairs("x", n=12), long]),
        params={**FAST, "max_steps": 4, "max_seq_len": 2048},
    )
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=TIMEOUT)
    assert job["result"]["summary"]["truncated_examples"] >= 1
    messages = await fetch_all(
        settings.postgres_dsn, "SELECT message FROM job_progress WHERE job_id = %s", job_id
    )
    text = " ".join(m["message"] or "" for m in messages)
    assert "lowered to the model's limit of 512" in text and "truncated" in text


async def test_an_adapter_for_another_base_model_is_refused_when_served(
    settings, tracker, lora, tmp_path
):
    from lorag_lora.tiny import build_tiny_llama

    other = build_tiny_llama(tmp_path / "other-tiny", seed=1)
    job_id = await submit(
        settings,
        jsonl(pairs("x")),
        params={**FAST, "adapter": "other-base", "base_model": str(other)},
    )
    await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=TIMEOUT)
    status, body = http(
        lora,
        "POST",
        "/v1/chat/completions",
        {"model": "other-base", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 409 and body["error"]["code"] == "ADAPTER_BASE_MISMATCH"
    assert "trained on" in body["error"]["message"]


async def test_a_corrupted_adapter_file_is_refused_when_loaded(settings, tracker, lora):
    job_id = await submit(settings, jsonl(pairs("x")), params={**FAST, "adapter": "fragile"})
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=TIMEOUT)
    version = job["result"]["summary"]["version"]
    objects = ObjectStore.from_settings(settings.s3)
    key = f"fragile/v{version}/adapter_model.safetensors"
    good = objects.get_bytes("lorag-adapters", key)
    objects.put_bytes("lorag-adapters", key, good[:-8] + b"garbage!")  # rewritten, new digest
    status, body = http(
        lora,
        "POST",
        "/v1/chat/completions",
        {"model": "fragile", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert status == 502 and body["error"]["code"] == "ADAPTER_CORRUPTED"
    assert "corrupted" in body["error"]["message"]
    assert chat(lora, "base")


@pytest.fixture(scope="module")
def lora_gateway(settings, logs_dir, lora):
    """A gateway in front of the module's lora-service, for `lorag` user commands."""
    running = start_gateway(logs_dir, lora)
    yield running
    running.process.stop()


async def test_cancel_stops_training_within_five_seconds(settings, tracker, lora, lora_gateway):
    job_id = await submit(settings, jsonl(pairs("x")), params={**FAST, "max_steps": 100000})
    await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING", timeout=TIMEOUT)
    started = asyncio.get_running_loop().time()  # the clock runs from the user's command
    cancelled = await asyncio.to_thread(lora_gateway.cli, "jobs", "cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    await wait_for_job(settings.postgres_dsn, job_id, state="CANCELLED", timeout=10)
    assert asyncio.get_running_loop().time() - started < 5


async def test_promotion_moves_an_alias_and_keeps_history(settings, tracker, lora, lora_gateway):
    promo = f"promo-{uuid.uuid4().hex[:6]}"
    first = await submit(settings, jsonl(pairs("one")), params={**FAST, "adapter": promo})
    await wait_for_job(settings.postgres_dsn, first, state="SUCCEEDED", timeout=TIMEOUT)
    second = await submit(settings, jsonl(pairs("two", seed=5)), params={**FAST, "adapter": promo})
    await wait_for_job(settings.postgres_dsn, second, state="SUCCEEDED", timeout=TIMEOUT)

    def adapters(*args: str) -> object:
        done = lora_gateway.cli("adapters", *args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert adapters("promote", promo, "1", "production")["version"] == 1
    shown = adapters("show", f"{promo}@production")
    assert shown["version"] == 1 and "production" in shown["aliases"]
    assert [h["alias"] for h in shown["history"]].count("latest") == 2
    listed = adapters("ls")
    mine = [a for a in listed if a["name"] == promo]
    assert [a["version"] for a in mine] == [2, 1]
    assert {"sha256", "base_model", "metrics"} <= mine[0].keys()
    assert chat(lora, f"{promo}@production") == chat(lora, f"{promo}:1") != chat(lora, promo)
    # The admin API sees the same registry, by the owner the jobs were submitted for.
    async with LoraClient(f"http://127.0.0.1:{lora.port}", settings.service_secret) as admin:
        versions = await admin.list_adapters("default", name=promo)
        assert [(v.version, v.owner) for v in versions] == [(2, "default"), (1, "default")]
        assert "production" in versions[1].aliases
        assert await admin.list_adapters("someone-else", name=promo) == []
        assert not (await admin.check_name("someone-else", promo)).available
