"""Kill the lora-service mid-training: the next process resumes from the last checkpoint."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from tests.integration import test_lora_helpers as helpers
from tests.integration.test_lora_helpers import jsonl, lora_env, pairs, submit
from tests.support.db import fetch_all, wait_for_job

pytestmark = pytest.mark.integration
tiny_models = helpers.tiny_models
PARAMS = {"max_steps": 60, "lr": 0.005, "batch_size": 4, "max_seq_len": 64, "seed": 11}


async def wait_for_checkpoint(settings, job_id: str, at_least: int, timeout: float = 120) -> int:
    objects = ObjectStore.from_settings(settings.s3)
    key = f"checkpoints/{job_id}/latest.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if objects.exists("lorag-artifacts", key):
            step = json.loads(objects.get_bytes("lorag-artifacts", key))["step"]
            if step >= at_least:
                return int(step)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no checkpoint at step {at_least} within {timeout}s")


async def test_kill_and_resume_reaches_the_uninterrupted_final_loss(
    settings, tracker, logs_dir, tiny_models, tmp_path
):
    data = jsonl(pairs("a steady answer", n=64, seed=4))
    env = lora_env(tiny_models, tmp_path / "work", free_port(), LORAG_LORA_SERVE="false")
    first = start_lora_worker(logs_dir, env)
    try:
        straight = await submit(settings, data, params={**PARAMS, "adapter": "steady"})
        done = await wait_for_job(settings.postgres_dsn, straight, state="SUCCEEDED", timeout=180)
        resumed = await submit(settings, data, params={**PARAMS, "adapter": "steady"})
        step = await wait_for_checkpoint(settings, resumed, at_least=10)
        first.kill()
    finally:
        if first.process.poll() is None:
            first.stop()
    assert step < PARAMS["max_steps"]
    second = start_lora_worker(logs_dir, env)
    try:
        job = await wait_for_job(settings.postgres_dsn, resumed, state="SUCCEEDED", timeout=180)
    finally:
        second.stop()
    a, b = done["result"]["summary"], job["result"]["summary"]
    assert b["step"] == a["step"] == PARAMS["max_steps"]
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert b["eval_loss"] == pytest.approx(a["eval_loss"], rel=1e-3)
    messages = await fetch_all(
        settings.postgres_dsn, "SELECT message FROM job_progress WHERE job_id = %s", resumed
    )
    assert any("resuming from the checkpoint" in (m["message"] or "") for m in messages)
    rows = await fetch_all(
        settings.postgres_dsn, "SELECT version FROM lora_adapters WHERE job_id = %s", resumed
    )
    assert len(rows) == 1  # one version for the job, whatever happened to it
    objects = ObjectStore.from_settings(settings.s3)
    assert not list(objects.list_keys("lorag-artifacts", f"checkpoints/{resumed}/"))


def start_lora_worker(logs_dir, env):
    """A lora-service without the inference API (this test is about training only)."""
    from tests.support.processes import start_service

    return start_service("lorag_lora", logs_dir, **env)
