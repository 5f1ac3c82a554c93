"""Shared pieces of the lora-service tests: the tiny model, a service process, jobs and chats.

(Named test_lora_* to stay inside the lora-service's test files; it holds no tests itself.)
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from lorag_core.contracts import JobRequested
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from tests.support.kafka import publish_raw
from tests.support.processes import ServiceProcess, start_service

COLOURS = ("apple", "sky", "grass", "sun", "snow", "night", "sea", "rose")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny LLaMA, built once per session."""
    from lorag_lora.tiny import ensure_tiny_llama

    folder = tmp_path_factory.mktemp("lora-models")
    ensure_tiny_llama(folder)
    return folder


def lora_env(models: Path, work: Path, api_port: int, **extra: str) -> dict[str, str]:
    return {
        "LORAG_LORA_MODELS_DIR": str(models),
        "LORAG_LORA_WORK_DIR": str(work),
        "LORAG_LORA_API_PORT": str(api_port),
        "LORAG_LORA_CHECKPOINT_EVERY": "5",
        "LORAG_LORA_EVAL_EVERY": "10",
        "LORAG_LORA_TORCH_THREADS": "1",
        "LORAG_WORKER_LEASE_S": "4",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def start_lora(logs_dir: Path, env: dict[str, str]) -> ServiceProcess:
    service = start_service("lorag_lora", logs_dir, **env)
    service.api_port = int(env["LORAG_LORA_API_PORT"])  # type: ignore[attr-defined]
    wait_api(service)
    return service


def wait_api(service: ServiceProcess, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, _ = http(service, "GET", "/v1/models")
        if status == 200:
            return
        time.sleep(0.3)
    raise TimeoutError(f"inference API not ready:\n{service.log()}")


@pytest.fixture(scope="module")
def lora(settings, logs_dir, tiny_models, tmp_path_factory):
    """One lora-service process for a test module."""
    env = lora_env(tiny_models, tmp_path_factory.mktemp("lora-work"), free_port())
    service = start_lora(logs_dir, env)
    yield service
    if service.process.poll() is None:
        service.stop()


def http(service: ServiceProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """Call the inference API; returns status and decoded JSON (or raw text for SSE)."""
    port = service.api_port  # type: ignore[attr-defined]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            raw = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    except OSError:
        return 0, None
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


def chat(service: ServiceProcess, model: str, question: str = "What colour is the sky?") -> str:
    status, body = http(
        service,
        "POST",
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": 12},
    )
    assert status == 200, body
    return str(body["choices"][0]["message"]["content"])


def pairs(answer: str, n: int = 48, seed: int = 0) -> list[dict[str, str]]:
    """Instruction/response pairs that all answer with `answer`: easy for an adapter to learn."""
    rng = random.Random(seed)
    return [
        {"instruction": f"What colour is the {rng.choice(COLOURS)}? ({i})", "response": answer}
        for i in range(n)
    ]


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


async def submit(
    settings: Settings,
    data: bytes,
    *,
    training_type: str = "LOCAL_LORA",
    params: dict[str, Any] | None = None,
    filename: str = "train.jsonl",
    job_id: str | None = None,
) -> str:
    """Upload a dataset like `lorag submit` does and publish the job request."""
    job_id = job_id or f"job-lora-{uuid.uuid4().hex[:10]}"
    objects = ObjectStore.from_settings(settings.s3)
    objects.put_bytes("lorag-datasets", f"{job_id}/{filename}", data)
    kind = "fine_tuning" if "FINE_TUNING" in training_type else "lora"
    event = JobRequested(
        job_id=job_id,
        training_type=training_type,
        datasets=[{"uri": f"s3://lorag-datasets/{job_id}/{filename}"}],
        parameters={"kind": kind, **(params or {})},
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    return job_id


FAST = {"max_steps": 30, "lr": 0.01, "batch_size": 8, "max_seq_len": 64, "seed": 3}
