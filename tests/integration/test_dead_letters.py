"""Messages a consumer cannot handle land in the dead-letter topic; the next good one is handled."""

import base64
import json
import uuid

import pytest

from lorag_core.contracts import JobRequested, dead_letter_topic
from lorag_core.messaging.topics import JOB_REQUESTED
from tests.support.db import wait_for_job
from tests.support.kafka import publish_raw, read_topic

pytestmark = pytest.mark.integration


def good(job_id: str) -> dict:
    return {"job_id": job_id, "training_type": "EXTERNAL_RAG", "datasets": [{"uri": "s3://b/k"}]}


async def test_bad_input_is_dead_lettered_with_its_reason(settings, tracker):
    marker = uuid.uuid4().hex[:10].encode()  # the key that tells this test's letters apart
    bad = {
        "NOT_JSON": b"\x00\x01 this is not json",
        "UNKNOWN_SCHEMA_VERSION": json.dumps({**good("job-x"), "schema_version": 99}).encode(),
        "INVALID_CONTRACT": json.dumps({**good("job-y"), "training_type": "QUANTUM"}).encode(),
        "TOO_LARGE": json.dumps({**good("job-z"), "pad": "x" * (2 * 1024 * 1024)}).encode(),
    }
    missing_fields = json.dumps({"job_id": "job-w"}).encode()
    for payload in [*bad.values(), missing_fields]:
        await publish_raw(settings.kafka.bootstrap_servers, JOB_REQUESTED, payload, key=marker)
    after = f"job-after-bad-{marker.decode()}"
    await publish_raw(
        settings.kafka.bootstrap_servers,
        JOB_REQUESTED,
        JobRequested.model_validate(good(after)).to_bytes(),
        key=marker,
    )

    await wait_for_job(settings.postgres_dsn, after, state="QUEUED")  # the consumer went on

    def ours(letters):
        return [
            m
            for m in letters
            if m.get("key") == marker.decode() and m["consumer"].startswith("lorag.job-tracker")
        ]

    letters = ours(
        await read_topic(
            settings.kafka.bootstrap_servers,
            dead_letter_topic(JOB_REQUESTED),
            until=lambda seen: len(ours(seen)) >= 5,
        )
    )
    by_code = {}
    for letter in letters:
        by_code.setdefault(letter["reason_code"], []).append(letter)
    for code, payload in bad.items():
        assert code in by_code, f"no {code} dead letter; got {sorted(by_code)}"
        assert any(base64.b64decode(m["payload_base64"]) == payload for m in by_code[code]), (
            f"{code}: the original payload was not kept byte for byte"
        )
    assert any(
        "datasets" in m["reason"] and "training_type" in m["reason"]
        for m in by_code["INVALID_CONTRACT"]
    )
    assert all(m["original_topic"] == JOB_REQUESTED and m["reason"] for m in letters)
