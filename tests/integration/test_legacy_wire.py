"""A request in the old system's shape, published to Kafka, becomes a job of its new type."""

import base64
import json
import uuid

import pytest

from lorag_core.contracts import dead_letter_topic
from lorag_core.messaging.topics import JOB_REQUESTED
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw, read_topic

pytestmark = pytest.mark.integration


async def test_a_legacy_payload_is_normalised_and_tracked(settings, tracker):
    legacy_id = uuid.uuid4().hex[:10]
    payload = {
        "id": legacy_id,
        "type": "LORA",
        "minion_id": "ada",
        "config": {"dataset_path": "s3://lorag-datasets/legacy/style.jsonl", "lora_r": 4},
    }
    await publish_raw(settings.kafka.bootstrap_servers, JOB_REQUESTED, json.dumps(payload).encode())
    job = await wait_for_job(settings.postgres_dsn, f"legacy-{legacy_id}", state="QUEUED")
    assert (job["requested_type"], job["effective_type"]) == ("LORA", "LOCAL_LORA")
    assert job["request"]["parameters"]["r"] == 4 and job["minion_id"] == "ada"
    log = await fetch_all(
        settings.postgres_dsn, "SELECT message FROM job_progress WHERE job_id = %s", job["job_id"]
    )
    assert "deprecated" in log[0]["message"]


async def test_an_unconvertible_legacy_payload_is_dead_lettered_with_the_reason(settings, tracker):
    legacy_id = uuid.uuid4().hex[:10]
    payload = {"id": legacy_id, "type": "RAG", "config": {"chunk_size": 128}}  # no dataset
    await publish_raw(settings.kafka.bootstrap_servers, JOB_REQUESTED, json.dumps(payload).encode())

    def ours(letters):
        return [
            m
            for m in letters
            if m["reason_code"] == "LEGACY_UNCONVERTIBLE"
            and legacy_id.encode() in base64.b64decode(m["payload_base64"])
        ]

    letters = await read_topic(
        settings.kafka.bootstrap_servers,
        dead_letter_topic(JOB_REQUESTED),
        until=lambda seen: bool(ours(seen)),
    )
    found = ours(letters)
    assert found and "dataset" in found[0]["reason"]
