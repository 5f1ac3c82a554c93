"""A seeded schedule SIGKILLs services mid-job, for every job type: EXTERNAL_RAG, LOCAL_LORA,
LOCAL_HYBRID and legacy conversion. Every job still ends SUCCEEDED with one KB version and one
adapter version per job (its sub-jobs' included), none is lost, progress seq only grows."""

from __future__ import annotations

import random

import pytest

from lorag_core.storage import ObjectStore
from tests.faults.conftest import JOBS, KILLS, SEED
from tests.faults.drill import (
    DrillJob,
    hybrid_job,
    judge,
    kill_schedule,
    legacy_job,
    lora_job,
    rag_job,
    wait_final,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

# Per job type: how to submit one, and the services whose death it must survive.
DRILLS = {
    "EXTERNAL_RAG": (rag_job, ("rag-1", "rag-2", "tracker")),
    "LOCAL_LORA": (lora_job, ("lora", "tracker")),
    "LOCAL_HYBRID": (hybrid_job, ("hybrid", "rag-1", "rag-2", "lora", "tracker")),
    # The tracker's host is also the converter of legacy requests (the migration-service).
    "legacy": (legacy_job, ("tracker", "rag-1", "rag-2", "lora")),
}


@pytest.mark.parametrize("kind", DRILLS)
async def test_sigkill_schedule(settings, pool, kind):
    submit, slots = DRILLS[kind]
    rng = random.Random(f"{SEED}-{kind}")
    objects = ObjectStore.from_settings(settings.s3)
    waves = iter(range(10**6))

    async def wave() -> list[DrillJob]:
        first = next(waves) * JOBS
        return [await submit(settings, objects, SEED * 100 + k) for k in range(first, first + JOBS)]

    jobs = await wave()
    kills = await kill_schedule(settings, pool, slots, jobs, wave, rng, KILLS)
    ids = [j.job_id for j in jobs]
    rows = await wait_final(settings, ids, timeout=480)
    pool.settle()  # every service back before the judging and the next drill
    await judge(settings, f"sigkill {kind}", jobs, rows, kills)
    assert kills == KILLS, f"the schedule killed {kills} times in its time, not {KILLS}"
