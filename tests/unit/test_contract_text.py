"""Contracts refuse text Postgres cannot store (a NUL, a lone surrogate), anywhere in an event:
such an event could only fail in every consumer that records it, again and again."""

import json

import pytest
from pydantic import ValidationError

from lorag_core.contracts import JobCancelRequested, JobProgress, JobRequested

# pydantic itself refuses a lone surrogate in a str field ("unable to parse raw data as a unicode
# string"); the contracts refuse it anywhere else (a dict key, say), and a NUL anywhere.
SURROGATE = "text may not contain a lone UTF-16 surrogate|unable to parse raw data as a unicode"


@pytest.mark.parametrize(
    ("text", "why"),
    [("a\x00b", "text may not contain a NUL"), ("\ud800", SURROGATE), ("x\udfffy", SURROGATE)],
)  # fmt: skip
def test_unstorable_text_is_refused_at_any_depth(text, why):
    events = [
        (JobCancelRequested, {"job_id": "job-1", "reason": text}),
        (JobProgress, {"job_id": "job-1", "seq": 1, "state": "RUNNING", "producer": "p",
                       "metrics": {text: 1.0}}),
        (JobRequested, {"job_id": "job-1", "training_type": "EXTERNAL_RAG",
                        "datasets": [{"uri": "s3://lorag-datasets/x/"}],
                        "parameters": {"kind": "rag", "text_field": text}}),
    ]  # fmt: skip
    for contract, data in events:
        with pytest.raises(ValidationError, match=why):
            contract.model_validate(data)


def test_ordinary_unicode_is_kept():
    reason = "Straße 🧨 e\u0301 \u202e \U0010ffff"
    event = JobCancelRequested(job_id="job-1", reason=reason)
    assert JobCancelRequested.model_validate_json(event.to_bytes()).reason == reason
    assert json.loads(event.to_bytes())["reason"] == reason
