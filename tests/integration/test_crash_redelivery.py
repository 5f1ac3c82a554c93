"""A consumer killed after its effect, before its ack: the message comes again, the effect once."""

import asyncio
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from lorag_core.contracts import JobRequested
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.tracker import TRACKER_GROUP
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
GROUP = f"{TRACKER_GROUP}.requested"


async def committed_offsets(bootstrap: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(GROUP)
        return {tp: meta.offset for tp, meta in offsets.items() if tp.topic == JOB_REQUESTED}
    finally:
        await admin.close()


async def test_sigkill_before_ack_redelivers_and_the_effect_happens_once(settings, logs_dir):
    bootstrap = settings.kafka.bootstrap_servers
    doomed = start_service("lorag_migration", logs_dir, LORAG_FAULT_HOLD_BEFORE_ACK_S="120")
    job_id = f"job-crash-{uuid.uuid4().hex[:10]}"
    event = JobRequested(job_id=job_id, training_type="LORA", datasets=[{"uri": "s3://b/k"}])
    await publish_raw(bootstrap, JOB_REQUESTED, event.to_bytes(), key=job_id.encode())

    await wait_for_job(settings.postgres_dsn, job_id, state="QUEUED")  # the effect is committed
    before = await committed_offsets(bootstrap)
    doomed.kill()  # ...and the offset is not

    survivor = start_service("lorag_migration", logs_dir)
    try:

        async def caught_up() -> bool:
            after = await committed_offsets(bootstrap)
            return any(after.get(tp, -1) > before.get(tp, -1) for tp in after)

        for _ in range(300):
            if await caught_up():
                break
            await asyncio.sleep(0.2)
        else:
            raise AssertionError(
                f"the restarted consumer never committed past the message\n{survivor.log()}"
            )
        assert job_id in survivor.log(), "the restarted consumer did not receive the message again"
    finally:
        survivor.stop()
    jobs = await fetch_all(settings.postgres_dsn, "SELECT * FROM jobs WHERE job_id = %s", job_id)
    notices = await fetch_all(
        settings.postgres_dsn, "SELECT * FROM job_progress WHERE job_id = %s", job_id
    )
    assert len(jobs) == 1 and jobs[0]["state"] == "QUEUED"
    assert len(notices) == 1  # the deprecation notice was written once
