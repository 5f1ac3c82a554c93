"""A request in the old system's shape, published to Kafka, runs as a job of its new type."""

import base64
import json
import uuid

import pytest

from lorag_core.contracts import dead_letter_topic
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.storage import ObjectStore
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw, read_topic
from tests.support.processes import start_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rag(settings, tracker, logs_dir, tmp_path_factory):
    """The rag-service: it must run the request the migration-service normalised."""
    chroma = str(tmp_path_factory.mktemp("legacy-rag") / "chroma")
    service = start_service("lorag_rag", logs_dir, LORAG_CHROMA_PATH=chroma)
    yield service
    service.stop()


def upload(settings, files: dict[str, str]) -> str:
    objects = ObjectStore.from_settings(settings.s3)
    prefix = f"test-legacy-{uuid.uuid4().hex[:8]}"
    for name, text in files.items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{name}", text.encode())
    return f"s3://lorag-datasets/{prefix}/"


async def test_a_legacy_payload_is_normalised_and_runs_to_success(settings, tracker, rag):
    legacy_id = uuid.uuid4().hex[:10]
    kb = f"legacy-kb-{legacy_id}"
    uri = upload(
        settings, {"faq.md": "# FAQ\nThe depot opens at seven.", "notes.txt": "Bring a badge."}
    )
    payload = {
        "id": legacy_id,
        "type": "RAG",
        "minion_id": "ada",
        "config": {"dataset_uri": uri, "chunk_size": 64, "chunk_overlap": 8, "collection": kb},
    }
    await publish_raw(settings.kafka.bootstrap_servers, JOB_REQUESTED, json.dumps(payload).encode())
    job = await wait_for_job(
        settings.postgres_dsn, f"legacy-{legacy_id}", state="SUCCEEDED", timeout=120
    )
    assert (job["requested_type"], job["effective_type"]) == ("RAG", "EXTERNAL_RAG")
    parameters = job["request"]["parameters"]
    assert (parameters["chunk_tokens"], parameters["kb"]) == (64, kb) and job["minion_id"] == "ada"
    assert job["result"]["summary"]["sources"] == 2  # the converted request's dataset was read
    log = await fetch_all(
        settings.postgres_dsn,
        "SELECT seq, state, message FROM job_progress WHERE job_id = %s ORDER BY seq",
        job["job_id"],
    )
    assert log[0]["seq"] == 0 and "deprecated" in log[0]["message"]  # the notice comes first
    assert log[-1]["state"] == "SUCCEEDED"
    assert "RUNNING" in {r["state"] for r in log}  # the rag-service worked on it


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
