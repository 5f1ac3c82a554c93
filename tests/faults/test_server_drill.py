"""Servers fail under running jobs: Kafka SIGKILLed and Postgres stopped mid-job, each brought
back by `lorag up`; the S3 server stopped for 20 s while a job stores its adapter and a dataset
is uploaded through the gateway. Jobs SUCCEED, nothing is lost or duplicated."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lorag_core.storage import ObjectStore
from tests.faults.drill import DrillJob, judge, lora_job, rag_job, submit_rag, wait_final
from tests.support.db import fetch_all, wait_for_job
from tests.support.gateway import start_gateway

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
S3_DOWN_S = 20


def local_stack():
    """The session's own servers (tests/support/stack.py started them under LORAG_STATE_DIR)."""
    from lorag_local.stack import LocalStack

    if os.environ.get("LORAG_TEST_USE_ENV") == "1":
        pytest.fail("server drills restart the session's own servers; unset LORAG_TEST_USE_ENV")
    return LocalStack.from_env(Path(os.environ["LORAG_STATE_DIR"]))


def lorag_up() -> None:
    """`lorag up` itself brings a stopped server back (same ports and folders, from the env)."""
    done = subprocess.run(
        [sys.executable, "-m", "lorag_cli", "up"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("server", ["kafka", "postgres"])
async def test_a_server_killed_mid_job_and_brought_back_by_lorag_up(settings, pool, server):
    objects = ObjectStore.from_settings(settings.s3)
    jobs = [await rag_job(settings, objects, 7000 + k) for k in range(2)]
    await asyncio.sleep(4)  # mid-job: claimed and embedding
    stack = local_stack()
    if server == "postgres":  # a restart: SIGKILL would leave its backends holding the memory
        stack.postgres.stop()
    else:
        pid = stack.servers[server].pid()
        assert pid, f"{server} is not running"
        os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(5)
    await asyncio.to_thread(lorag_up)
    rows = await wait_final(settings, [j.job_id for j in jobs], timeout=300)
    how = "stopped" if server == "postgres" else "SIGKILLed"
    await judge(settings, f"{server} {how}, lorag up", jobs, rows, kills=1)


async def test_s3_stopped_for_20_s_during_uploads(settings, pool, logs_dir):
    gateway = await asyncio.to_thread(start_gateway, logs_dir)
    try:
        await _s3_drill(settings, gateway)
    finally:
        gateway.process.stop()


async def _s3_drill(settings, gateway) -> None:
    objects = ObjectStore.from_settings(settings.s3)
    training = await lora_job(settings, objects, 9001)
    await wait_for_job(settings.postgres_dsn, training.job_id, state="RUNNING", timeout=300)
    stack = local_stack()
    await asyncio.to_thread(stack.s3.stop)
    down_at = time.monotonic()
    headers = {"Authorization": f"Bearer {await asyncio.to_thread(gateway.token, 'default')}"}
    files = {"files": ("notes.md", b"# Notes\nThe depot opens at seven.\n" * 40, "text/markdown")}
    async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=120) as client:
        refused = await client.post("/api/datasets", files=files)  # while S3 is down
        await asyncio.sleep(max(0.0, S3_DOWN_S - (time.monotonic() - down_at)))
        await asyncio.to_thread(lorag_up)
        print(f"\nS3 down for {time.monotonic() - down_at:.1f}s; the upload meanwhile answered "
              f"{refused.status_code} {refused.text[:200]}")  # fmt: skip
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "STORAGE_UNAVAILABLE" and refused.headers["Retry-After"]
        stored = await client.post("/api/datasets", files=files)  # the retry, S3 back
        assert stored.status_code == 201, stored.text
    jobs = [training, DrillJob(await submit_rag(settings, stored.json()["uri"]), kb_versions=1)]
    rows = await wait_final(settings, [j.job_id for j in jobs], timeout=300)
    uploads = [k for k in objects.list_keys("lorag-datasets", "uploads/default/")
               if k.endswith("/notes.md")]  # fmt: skip
    assert stored.json()["uri"].split("lorag-datasets/")[1] + "notes.md" in uploads
    (work,) = await fetch_all(
        settings.postgres_dsn, "SELECT attempts FROM work_items WHERE job_id = %s", training.job_id
    )  # the attempts the outage cost the LoRA job (1: it stored its adapter before or after)
    print(f"\nthe LoRA job storing its adapter ran {work['attempts']} attempt(s)")
    await judge(settings, "s3 stopped 20s, lorag up", jobs, rows, kills=1)
