"""The tracker's fast paths keep the rules: a batch is counted by its first record per
partition, and decoding still refuses text Postgres cannot store."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from lorag_core.contracts import DeadLettered, JobProgress
from lorag_core.contracts.base import storable_json
from lorag_core.messaging.delivery import Rejected, counted_keys, decode


def record(partition: int, offset: int, value: bytes = b"{}") -> ConsumerRecord:
    return ConsumerRecord(
        "job.progress", partition, offset, 0, 0, None, value, None, 0, len(value), ()
    )


def test_a_batch_is_counted_by_its_first_record_of_each_partition() -> None:
    batch = [record(0, 7), record(1, 3), record(0, 5), record(1, 4), record(0, 6)]
    assert sorted(counted_keys(batch)) == [("job.progress", 0, 5), ("job.progress", 1, 3)]
    assert counted_keys([record(2, 9)]) == [("job.progress", 2, 9)]


@pytest.mark.parametrize(
    ("escaped", "why"), [("\\u0000", "NUL"), ("\\ud800", "surrogate")]
)  # fmt: skip
def test_decoding_refuses_unstorable_text_written_as_an_escape(escaped: str, why: str) -> None:
    body = '{"job_id": "j-1", "seq": 1, "state": "RUNNING", "producer": "p' + escaped + '"}'
    raw = body.encode()
    assert not storable_json(raw)
    with pytest.raises(Rejected) as refused:
        decode(record(0, 1, raw), JobProgress, 10_000)
    assert refused.value.code == "INVALID_CONTRACT", why


def test_clean_json_decodes_on_the_fast_path() -> None:
    raw = b'{"job_id": "j-1", "seq": 1, "state": "RUNNING", "producer": "p \\" q"}'
    assert storable_json(raw)
    assert decode(record(0, 1, raw), JobProgress, 10_000).producer == 'p " q'


def test_a_refusal_names_no_unstorable_location_so_its_dead_letter_can_be_written() -> None:
    # A NUL in a dict key whose value is also wrong: the field error's location would hold it.
    body = '{"job_id": "j-1", "seq": 1, "state": "RUNNING", "producer": "p",'
    raw = (body + ' "metrics": {"a\\u0000b": "not a number"}}').encode()
    with pytest.raises(Rejected) as refused:
        decode(record(0, 1, raw), JobProgress, 10_000)
    assert refused.value.code == "INVALID_CONTRACT"
    assert refused.value.reason == "<root>: text may not contain a NUL character"
    DeadLettered(original_topic="job.progress", partition=0, offset=1, payload_base64="",
                 consumer="c", reason_code="INVALID_CONTRACT", reason=refused.value.reason,
                 attempts=1)  # fmt: skip
