"""The lora-service's OpenAI API with the official `openai` client, against real processes.

Adapters and a fine-tuned model are put in the registry and object storage directly (as a
finished job leaves them; training is not the point). Alice has two adapters and a fine-tuned
model, Bob one adapter. One service requires API keys (a gateway token for Alice, a settings key
for Bob); a second one, keyless, has one batch slot and no queue for the 429 and disconnect tests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import psycopg
import pytest
import torch
from peft import LoraConfig, get_peft_model
from psycopg.rows import dict_row

from lorag_api.lora import ChatClient
from lorag_core.db import tokens
from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from lorag_lora.adapters import artifacts, registry
from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from tests.integration import test_lora_helpers as helpers
from tests.integration.test_lora_helpers import lora_env
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
tiny_models = helpers.tiny_models
SKY = [{"role": "user", "content": "What colour is the sky?"}]
BOB_KEY = "bob-key-" + uuid.uuid4().hex


async def _connect(settings: Any) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row
    )


@pytest.fixture(scope="module")
async def models(settings, tiny_models, tmp_path_factory) -> dict[str, str]:
    """Registered models: {role: model id}; adapters with random (non-zero) LoRA weights."""
    tag = uuid.uuid4().hex[:6]
    objects = ObjectStore.from_settings(settings.s3)
    objects.ensure_buckets(settings.s3.buckets)  # before any service made them
    base = ModelManager(LoraSettings(models_dir=tiny_models)).load(None)
    made: dict[str, str] = {}
    async with await _connect(settings) as conn:
        for role, owner, seed in (("a", "alice", 1), ("b", "alice", 2), ("bob", "bob", 3)):
            name = f"{role}-{tag}"
            torch.manual_seed(seed)
            config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
            peft = get_peft_model(base.fresh_copy(), config)
            folder = tmp_path_factory.mktemp(name)
            peft.save_pretrained(folder)
            version = await registry.reserve_version(conn, name, f"job-{name}", owner)
            ref = artifacts.store_adapter(objects, folder, name, version, {})
            await registry.mark_ready(
                conn, name, version, base_model=base.name, base_model_revision=base.revision,
                uri=artifacts.adapter_uri(name, version), sha256=ref.sha256, size_bytes=ref.size,
            )  # fmt: skip
            made[role] = name
        # A fully fine-tuned model: the base with perturbed weights, stored as a job stores it.
        tuned = base.fresh_copy()
        with torch.no_grad():
            torch.manual_seed(4)
            for p in tuned.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        folder = tmp_path_factory.mktemp("tuned")
        tuned.save_pretrained(folder)
        base.tokenizer.save_pretrained(folder)
        job = f"ft-{tag}"
        uri, weights = artifacts.store_model(objects, folder, job)
        version = await registry.reserve_version(conn, job, job, "alice")
        await registry.mark_ready(
            conn, job, version, kind="model", base_model=base.name,
            base_model_revision=base.revision, uri=uri, sha256=weights.sha256,
            size_bytes=weights.size,
        )  # fmt: skip
        made["ft"] = job
        # An adapter whose files are missing: fetching it fails (an unexpected error, 500).
        broken = f"broken-{tag}"
        version = await registry.reserve_version(conn, broken, f"job-{broken}", "alice")
        await registry.mark_ready(
            conn, broken, version, base_model=base.name, base_model_revision=base.revision,
            uri=f"s3://lorag-adapters/nowhere-{tag}/", sha256="0" * 64, size_bytes=1,
        )  # fmt: skip
        made["broken"] = broken
    return made


@pytest.fixture(scope="module")
async def alice_key(settings) -> str:
    async with await _connect(settings) as conn:
        return str((await tokens.create(conn, "alice", "openai test"))["token"])


@pytest.fixture(scope="module")
def keyed(settings, logs_dir, tiny_models, tmp_path_factory, models):
    """A lora-service that requires API keys; 8 batch slots."""
    env = lora_env(
        tiny_models, tmp_path_factory.mktemp("lora-keyed"), free_port(),
        LORAG_LORA_REQUIRE_API_KEY="true", LORAG_LORA_API_KEYS=json.dumps({BOB_KEY: "bob"}),
        LORAG_LORA_MAX_BATCH="8", LORAG_LORA_TRAIN="false",
    )  # fmt: skip
    service = start_with_api(logs_dir, env)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def narrow(settings, logs_dir, tiny_models, tmp_path_factory):
    """A keyless (local profile) lora-service with one batch slot and no waiting line."""
    env = lora_env(
        tiny_models, tmp_path_factory.mktemp("lora-narrow"), free_port(),
        LORAG_LORA_MAX_BATCH="1", LORAG_LORA_MAX_QUEUE="0", LORAG_LORA_TRAIN="false",
        LORAG_LORA_RETRY_AFTER_S="3",
    )  # fmt: skip
    service = start_with_api(logs_dir, env)
    yield service
    service.stop()


def start_with_api(logs_dir: Path, env: dict[str, str]) -> Any:
    """Start a lora-service; ready when the API answers (401 without a key) and the engine is up."""
    service = start_service("lorag_lora", logs_dir, ready_timeout=180, **env)
    service.api_port = int(env["LORAG_LORA_API_PORT"])  # type: ignore[attr-defined]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            status = httpx.get(_url(service, "/v1/models"), timeout=5).status_code
        except httpx.HTTPError:
            status = 0
        if status in (200, 401) and _status(service)["ready"]:
            return service
        time.sleep(0.3)
    raise TimeoutError(f"inference API not ready:\n{service.log()}")


def _url(service: Any, path: str) -> str:
    return f"http://127.0.0.1:{service.api_port}{path}"


def _status(service: Any) -> dict[str, Any]:
    from lorag_core.settings import Settings

    reply = httpx.get(
        f"http://127.0.0.1:{service.port}/v1/serving",
        headers={"Authorization": f"Bearer {Settings().service_secret}"}, timeout=10,
    )  # fmt: skip
    reply.raise_for_status()
    return dict(reply.json())


def client(service: Any, key: str = "none", **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=_url(service, "/v1"), api_key=key, max_retries=0, **kw)


def aclient(service: Any, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=_url(service, "/v1"), api_key=key, max_retries=0,
                              timeout=120)  # fmt: skip


def ask(api: openai.OpenAI, model: str, messages: Any = SKY, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 12)
    return api.chat.completions.create(model=model, messages=messages, **kw)


# --- chat completions -------------------------------------------------------------------


def test_roles_content_parts_and_developer(keyed, models, alice_key):
    api = client(keyed, alice_key)
    plain = [{"role": "system", "content": "Be brief."},
             {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
             {"role": "user", "content": "What colour is the sky?"}]  # fmt: skip
    text = lambda t: [{"type": "text", "text": t}]  # noqa: E731
    parts = [{"role": "developer", "content": text("Be ") + text("brief.")},
             {"role": "user", "content": text("Hi")}, {"role": "assistant", "content": "Hello."},
             {"role": "user", "content": text("What colour is the sky?")}]  # fmt: skip
    first = ask(api, models["a"], plain)
    second = ask(api, models["a"], parts)
    assert first.choices[0].message.content == second.choices[0].message.content
    assert first.usage.prompt_tokens == second.usage.prompt_tokens > 20  # the template's turns
    assert first.choices[0].message.role == "assistant"
    assert first.model == f"{models['a']}:1"


def test_max_tokens_stop_and_finish_reasons(keyed, models, alice_key):
    api = client(keyed, alice_key)
    cut = ask(api, "base", max_tokens=5)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 5
    cut2 = ask(api, "base", max_tokens=None, max_completion_tokens=5)
    assert cut2.choices[0].message.content == cut.choices[0].message.content
    longer = ask(api, "base", max_tokens=20).choices[0].message.content
    assert longer.startswith(cut.choices[0].message.content)
    stop = longer[8:11]
    stopped = ask(api, "base", max_tokens=20, stop=[stop, "never-seen"])
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.choices[0].message.content == longer[: longer.index(stop)]
    assert ask(api, "base", max_tokens=20, stop=stop).choices[0].message.content == (
        stopped.choices[0].message.content
    )


def test_sampling_temperature_top_p_and_seed(keyed, models, alice_key):
    api = client(keyed, alice_key)
    kw = {"max_tokens": 16, "temperature": 1.2, "top_p": 0.95}
    one = ask(api, models["b"], seed=7, **kw).choices[0].message.content
    assert ask(api, models["b"], seed=7, **kw).choices[0].message.content == one
    others = {ask(api, models["b"], seed=s, **kw).choices[0].message.content for s in (8, 9, 10)}
    assert others - {one}, "different seeds sample differently"
    greedy = ask(api, models["b"], max_tokens=16).choices[0].message.content
    narrow = ask(api, models["b"], seed=3, max_tokens=16, temperature=1.0, top_p=1e-6)
    assert narrow.choices[0].message.content == greedy  # a tiny nucleus is the top token


def test_stream_with_usage_ends_with_length(keyed, models, alice_key):
    api = client(keyed, alice_key)
    whole = ask(api, models["a"], max_tokens=10)
    chunks = list(ask(api, models["a"], max_tokens=10, stream=True,
                      stream_options={"include_usage": True}))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    plain = list(ask(api, models["a"], max_tokens=10, stream=True))
    assert all(c.usage is None for c in plain)


def test_stream_stopped_by_a_stop_sequence(keyed, alice_key):
    api = client(keyed, alice_key)
    longer = ask(api, "base", max_tokens=20).choices[0].message.content
    stop = longer[6:10]
    chunks = list(ask(api, "base", max_tokens=20, stop=stop, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == longer[: longer.index(stop)]
    assert chunks[-1].choices[0].finish_reason == "stop"


# --- text completions, models ----------------------------------------------------------


def test_completions_one_prompt_a_list_and_a_stream(keyed, models, alice_key):
    api = client(keyed, alice_key)
    one = api.completions.create(model=models["a"], prompt="The sky is", max_tokens=8)
    assert one.object == "text_completion" and one.choices[0].finish_reason == "length"
    assert one.usage.completion_tokens == 8
    two = api.completions.create(model=models["a"], prompt=["The sky is", "Roses are"],
                                 max_tokens=8)  # fmt: skip
    assert [c.index for c in two.choices] == [0, 1]
    assert two.choices[0].text == one.choices[0].text != two.choices[1].text
    assert two.usage.completion_tokens == 16
    streamed = list(api.completions.create(model=models["a"], prompt=["The sky is", "Roses are"],
                                           max_tokens=8, stream=True))  # fmt: skip
    for i in (0, 1):
        text = "".join(c.choices[0].text for c in streamed if c.choices[0].index == i)
        assert text == two.choices[i].text
    assert sorted(c.choices[0].finish_reason for c in streamed if c.choices[0].finish_reason) == [
        "length",
        "length",
    ]


def test_models_lists_the_keys_owners_models_with_versions_aliases_and_fine_tuned(
    keyed, models, alice_key
):
    listing = client(keyed, alice_key).models.list().data
    ids = {m.id: m for m in listing}
    a, ft = models["a"], models["ft"]
    assert {"base", a, f"{a}:1", f"{a}@latest", ft, f"{ft}:1"} <= set(ids)
    assert ids[a].owned_by == "alice" and ids["base"].owned_by == "lorag"
    assert ids[ft].model_extra["kind"] == "model" and ids[a].model_extra["kind"] == "adapter"
    assert not any(m.startswith(models["bob"]) for m in ids)  # Bob's adapter is not Alice's
    bob = {m.id for m in client(keyed, BOB_KEY).models.list().data}
    assert models["bob"] in bob and a not in bob and "base" in bob
    assert client(keyed, alice_key).models.retrieve(a).owned_by == "alice"


def test_a_fine_tuned_model_is_served_as_a_whole_model(keyed, models, alice_key):
    api = client(keyed, alice_key)
    tuned = ask(api, models["ft"], max_tokens=12)
    assert tuned.model == f"{models['ft']}:1"
    assert tuned.choices[0].message.content != ask(api, "base").choices[0].message.content
    assert ask(api, models["ft"], max_tokens=12).choices[0].message.content == (
        tuned.choices[0].message.content
    )
    assert f"{models['ft']}:1" in _status(keyed)["loaded"]


# --- keys and owners -------------------------------------------------------------------


def test_keys_are_required_and_never_reach_another_owners_models(keyed, models, alice_key,
                                                                  settings):  # fmt: skip
    with pytest.raises(openai.AuthenticationError) as missing:
        ask(client(keyed, "wrong-key"), "base")
    assert missing.value.body["code"] == "invalid_api_key"
    raw = httpx.post(_url(keyed, "/v1/chat/completions"), json={"model": "base", "messages": SKY})
    assert raw.status_code == 401 and set(raw.json()["error"]) == {"message", "type", "param",
                                                                     "code"}  # fmt: skip
    bob = client(keyed, BOB_KEY)
    assert ask(bob, models["bob"]).choices[0].message.content
    with pytest.raises(openai.NotFoundError) as theirs:
        ask(bob, models["a"])
    with pytest.raises(openai.NotFoundError) as nobody:
        ask(bob, f"nobody-{uuid.uuid4().hex[:6]}")
    shape = lambda e: e.value.body["message"].split(" ")[:2]  # noqa: E731
    assert shape(theirs) == shape(nobody) and theirs.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        bob.models.retrieve(models["a"])
    with pytest.raises(openai.NotFoundError):
        ask(client(keyed, alice_key), models["bob"])


async def test_the_service_token_acts_for_x_lorag_owner(keyed, models, settings):
    """How the rag-service and the hybrid-orchestrator call: ChatClient, service token."""
    async with ChatClient(_url(keyed, "/v1"), settings.service_secret) as chat:
        assert await chat.complete(models["a"], SKY, max_tokens=6, owner="alice")
        assert await chat.complete("base", SKY, max_tokens=6, owner="bob")
        with pytest.raises(Exception, match="no adapter"):
            await chat.complete(models["a"], SKY, max_tokens=6, owner="bob")


# --- errors ----------------------------------------------------------------------------


def test_errors_are_in_openais_shape(keyed, models, alice_key):
    api = client(keyed, alice_key)
    with pytest.raises(openai.BadRequestError) as bad_name:
        ask(api, "x:zero")
    with pytest.raises(openai.BadRequestError) as image:
        ask(api, "base", [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}])  # fmt: skip
    with pytest.raises(openai.UnprocessableEntityError) as invalid:
        ask(api, "base", temperature=5)
    with pytest.raises(openai.InternalServerError) as crashed:
        ask(api, models["broken"])
    for err, status in ((bad_name, 400), (image, 400), (invalid, 422), (crashed, 500)):
        assert err.value.status_code == status
        assert set(err.value.body) == {"message", "type", "param", "code"}, err.value.body
    assert invalid.value.body["param"] == "temperature"
    assert image.value.body["param"] == "messages[0].content"
    missing = httpx.get(_url(keyed, "/v1/nothing-here"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_url"


# --- batching --------------------------------------------------------------------------


async def test_each_request_in_a_mixed_adapter_batch_gets_its_tokens_alone(keyed, models,
                                                                           alice_key):  # fmt: skip
    api = aclient(keyed, alice_key)
    questions = ["What colour is the sky?", "Hi", "Tell me about roses and the long road home"]
    jobs = [(m, q) for m in ("base", models["a"], models["b"], models["ft"]) for q in questions]

    async def one(model: str, question: str) -> tuple[str, int]:
        reply = await api.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}], max_tokens=24
        )
        return reply.choices[0].message.content or "", reply.usage.completion_tokens

    alone = [await one(m, q) for m, q in jobs]
    together = await asyncio.gather(*(one(m, q) for m, q in jobs * 2))
    assert list(together) == alone * 2
    assert len({text for text, _ in alone}) > len(questions)  # the adapters do change answers


# --- queue and disconnects (one slot, no waiting line) ----------------------------------


def _long_stream(service: Any) -> Any:
    body = {"model": "base", "messages": SKY, "max_tokens": 480, "stream": True}
    return httpx.stream("POST", _url(service, "/v1/chat/completions"), json=body, timeout=60)


def _wait_running(service: Any, count: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while _status(service)["running"] != count:
        assert time.monotonic() < deadline, _status(service)
        time.sleep(0.05)


def test_a_full_queue_answers_429_and_a_disconnected_stream_frees_its_slot(narrow):
    api = client(narrow)
    with _long_stream(narrow) as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        _wait_running(narrow, 1)
        with pytest.raises(openai.RateLimitError) as full:
            ask(api, "base")
        assert full.value.response.headers["retry-after"] == "3"
        assert full.value.body["code"] == "rate_limit_exceeded"
    _wait_running(narrow, 0)  # the stream was cut off long before its 480 tokens
    assert ask(api, "base").choices[0].message.content


def test_a_disconnected_whole_answer_frees_its_slot(narrow):
    body = {"model": "base", "messages": SKY, "max_tokens": 480}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(_url(narrow, "/v1/chat/completions"), json=body, timeout=0.5)
    _wait_running(narrow, 0)
    assert ask(client(narrow), "base").choices[0].message.content


def test_keyless_local_profile_sees_every_model(narrow, models):
    ids = {m.id for m in client(narrow).models.list().data}
    assert models["a"] in ids and models["bob"] in ids
