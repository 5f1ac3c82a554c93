"""Fault drills: real services and servers, killed and restarted on a seeded schedule.

Sized for CI (a few minutes in all): LORAG_DRILL_KILLS sets the SIGKILLs per drill (default 6),
LORAG_DRILL_JOBS the jobs (default 4), LORAG_DRILL_SEED the schedule (default 16).
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.support.chroma import chroma_server
from tests.support.processes import start_replicas, start_service

KILLS = int(os.environ.get("LORAG_DRILL_KILLS", "6"))
JOBS = int(os.environ.get("LORAG_DRILL_JOBS", "4"))
SEED = int(os.environ.get("LORAG_DRILL_SEED", "16"))
LEASE_S = 3
# A drill kills workers on purpose: the attempt cap (ATTEMPTS_EXHAUSTED) must not end its jobs.
WORKER_ENV = {"LORAG_WORKER_LEASE_S": str(LEASE_S), "LORAG_WORKER_MAX_ATTEMPTS": str(KILLS + 5)}


@pytest.fixture
def rng() -> random.Random:
    return random.Random(SEED)


@pytest.fixture(scope="module")
def tracker(settings, logs_dir):
    """A service process hosting the job tracker (the migration-service), for the module."""
    service = start_service("lorag_migration", logs_dir)
    yield service
    if service.process.poll() is None:
        service.stop()


@pytest.fixture(scope="module")
def rag_pool(settings, tracker, logs_dir, tmp_path_factory):
    """Two rag-service replicas sharing a Chroma server; env to start more like them."""
    state = tmp_path_factory.mktemp("drill-rag")
    with chroma_server(state / "chroma", logs_dir) as chroma_url:
        env = dict(
            WORKER_ENV, LORAG_CHROMA_URL=chroma_url, LORAG_RAG_TORCH_THREADS="1",
            LORAG_STATE_DIR=str(state), HF_HUB_OFFLINE="1",
        )  # fmt: skip
        started = time.monotonic()
        running = start_replicas(
            "lorag_rag", logs_dir, 2, name="drill-rag", ready_timeout=240, **env
        )
        for replica in running:
            replica.wait_log(f"worker {replica.instance_id} claiming", timeout=120)
        print(f"\n2 rag-service replicas ready in {time.monotonic() - started:.1f}s")
        yield running, env
        for replica in running:
            if replica.process.poll() is None:
                replica.stop()
