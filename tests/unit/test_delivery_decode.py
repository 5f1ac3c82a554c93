"""What a consumer refuses, and with which dead-letter code."""

import json

import pytest
from aiokafka import ConsumerRecord

from lorag_core.contracts import JobRequested
from lorag_core.messaging.delivery import Rejected, decode

GOOD = {"job_id": "j-1", "training_type": "EXTERNAL_RAG", "datasets": [{"uri": "s3://b/k"}]}


def record(value: bytes) -> ConsumerRecord:
    return ConsumerRecord("job.requested", 0, 7, 0, 0, b"j-1", value, None, 0, len(value), [])


def test_a_good_request_decodes():
    assert decode(record(json.dumps(GOOD).encode()), JobRequested, 1024).job_id == "j-1"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\xff\xfe not json", "NOT_JSON"),
        (b"{truncated", "NOT_JSON"),
        (b"[1, 2]", "INVALID_CONTRACT"),
        (json.dumps({**GOOD, "schema_version": 7}).encode(), "UNKNOWN_SCHEMA_VERSION"),
        (json.dumps({**GOOD, "training_type": "QUANTUM"}).encode(), "INVALID_CONTRACT"),
        (json.dumps({"job_id": "j-1"}).encode(), "INVALID_CONTRACT"),
        (json.dumps({**GOOD, "pad": "x" * 2000}).encode(), "TOO_LARGE"),
    ],
)
def test_bad_messages_are_rejected_with_a_code(payload, code):
    with pytest.raises(Rejected) as caught:
        decode(record(payload), JobRequested, 1024)
    assert caught.value.code == code
    assert caught.value.reason


def test_a_legacy_request_is_left_to_the_migration_service():
    from lorag_core.messaging.delivery import NotForUs

    legacy = {"id": "42", "type": "RAG", "config": {"dataset_path": "s3://b/k"}}
    with pytest.raises(NotForUs):
        decode(record(json.dumps(legacy).encode()), JobRequested, 1024)
