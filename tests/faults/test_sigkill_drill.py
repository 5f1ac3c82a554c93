"""A seeded schedule SIGKILLs services mid-job (rag-service replicas and the tracker's host);
every job still ends SUCCEEDED with one KB version, none is lost, progress seq only grows."""

from __future__ import annotations

import asyncio
import time

import pytest

from lorag_core.storage import ObjectStore
from tests.faults.conftest import JOBS, KILLS, SEED
from tests.faults.drill import judge, submit_rag, upload_notes, wait_final
from tests.support.processes import ServiceProcess, start_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


async def test_sigkill_schedule_on_rag_jobs(settings, rag_pool, tracker, logs_dir, rng):
    replicas, env = rag_pool
    objects = ObjectStore.from_settings(settings.s3)
    uris = [upload_notes(objects, SEED * 100 + k, files=4, sentences=80) for k in range(JOBS)]
    job_ids = [await submit_rag(settings, uri) for uri in uris]
    services: list[ServiceProcess] = [*replicas, tracker]
    restarts: list[asyncio.Task] = []
    kills, started = 0, time.monotonic()

    async def restart(slot: int, victim: ServiceProcess) -> None:
        extra = env if victim.module == "lorag_rag" else {}
        ident = {"LORAG_INSTANCE_ID": victim.instance_id} if victim.instance_id else {}
        fresh = await asyncio.to_thread(
            start_service, victim.module, logs_dir, ready_timeout=240, **extra, **ident
        )
        fresh.instance_id = victim.instance_id
        services[slot] = fresh

    while kills < KILLS and time.monotonic() - started < 420:
        await asyncio.sleep(rng.uniform(1.0, 4.0))
        rows = await wait_final(settings, job_ids, timeout=0.1)
        if len(rows) == len(job_ids) and all(r["state"] == "SUCCEEDED" for r in rows.values()):
            break  # every job done before the schedule ran out: the figures say how many kills
        alive = [k for k, s in enumerate(services) if s.process.poll() is None]
        if not alive:
            continue
        slot = rng.choice(alive)
        victim = services[slot]
        victim.kill()
        kills += 1
        restarts.append(asyncio.create_task(restart(slot, victim)))
    rows = await wait_final(settings, job_ids, timeout=420)
    await asyncio.gather(*restarts)
    for k, service in enumerate(services[: len(replicas)]):  # the fixture stops these
        replicas[k] = service
    if services[-1] is not tracker:  # a restarted tracker host is ours to stop
        services[-1].stop()
    await judge(settings, "sigkill EXTERNAL_RAG", job_ids, rows, kills)
    assert kills >= 1, "the schedule never killed anything mid-job"


def local_stack():
    """The session's own servers (tests/support/stack.py started them under LORAG_STATE_DIR)."""
    import os
    from pathlib import Path

    from lorag_local.stack import LocalStack

    if os.environ.get("LORAG_TEST_USE_ENV") == "1":
        pytest.fail("server drills restart the session's own servers; unset LORAG_TEST_USE_ENV")
    return LocalStack.from_env(Path(os.environ["LORAG_STATE_DIR"]))


def lorag_up() -> None:
    """`lorag up` itself brings a stopped server back (same ports and folders, from the env)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "lorag_cli", "up"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("server", ["kafka", "postgres"])
async def test_a_server_killed_mid_job_and_brought_back_by_lorag_up(settings, rag_pool, server):
    import os
    import signal

    objects = ObjectStore.from_settings(settings.s3)
    job_ids = [
        await submit_rag(settings, upload_notes(objects, 7000 + k, files=4, sentences=80))
        for k in range(2)
    ]
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
    rows = await wait_final(settings, job_ids, timeout=300)
    how = "stopped" if server == "postgres" else "SIGKILLed"
    await judge(settings, f"{server} {how}, lorag up", job_ids, rows, kills=1)
