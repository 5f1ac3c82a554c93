"""Topic fuzzing: over a thousand generated invalid payloads on job.requested, job.progress,
job.cancel and job.compensate (random bytes, wrong types, boundary sizes, unicode edge cases),
and requests that pass the contract but are wrong in meaning (another bucket, another owner's
upload, an unknown base model). Each invalid one is dead-lettered with a code, each wrong one
ends FAILED with a code, no service restarts, and a valid job sent afterwards succeeds.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, Phase, find
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from lorag_core.contracts import (
    CompensationRequested,
    JobCancelRequested,
    JobProgress,
    JobRequested,
    dead_letter_topic,
)
from lorag_core.contracts.base import Event
from lorag_core.messaging.delivery import NotForUs, Rejected, decode
from lorag_core.storage import ObjectStore
from tests.integration.test_lora_helpers import lora_env
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import read_topic
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
READY_S = 300  # model-loading services on a loaded machine take more than the usual minute
PER_TOPIC = 280  # four topics: over 1,000 invalid payloads in all
BATCH = 20
MAX_BYTES = 8 * 1024  # the services' LORAG_KAFKA_MAX_MESSAGE_BYTES in this test
JOB = "job-fuzz-0001"
DECODE_CODES = {"NOT_JSON", "INVALID_CONTRACT", "UNKNOWN_SCHEMA_VERSION", "TOO_LARGE"}
VALID: dict[type[Event], dict[str, Any]] = {
    JobRequested: {"job_id": JOB, "training_type": "EXTERNAL_RAG", "owner": "fuzz",
                   "datasets": [{"uri": "s3://lorag-datasets/fuzz/"}]},
    JobProgress: {"job_id": JOB, "seq": 1, "state": "RUNNING", "producer": "fuzz"},
    JobCancelRequested: {"job_id": JOB, "reason": "fuzz", "requested_by": "fuzz"},
    CompensationRequested: {"job_id": JOB, "parent_job_id": "job-fuzz-parent", "reason": "fuzz"},
}  # fmt: skip
EDGE_TEXT = st.sampled_from([
    "", " ", "\u0000", "a\u0000b", "\ud800", "\udfff", "\u202eevil", "\u200b", "\ufeff",
    "e\u0301", "🧨" * 40, "\U0010ffff", "ﷺ" * 10, "x" * 129, "x" * 501, "x" * 2001, "x" * 9000,
    "../../etc/passwd", "${jndi:ldap://x}", "'; DROP TABLE jobs; --", "\r\n\t",
])  # fmt: skip
WRONG_TYPES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), EDGE_TEXT,
)  # fmt: skip


def to_json(data: Any) -> bytes:
    """JSON as a producer might send it: NaN and lone surrogates included."""
    return json.dumps(data, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def invalid_payload(draw: Any, contract: type[Event]) -> bytes:
    """A payload the contract refuses: random bytes, a field of a wrong type or size, a missing
    or extra field, an unknown version, or a payload over the size limit."""
    valid = dict(VALID[contract])
    kind = draw(st.sampled_from(
        ["bytes", "wrong", "wrong", "edge", "missing", "extra", "version", "huge", "not-object"]
    ))  # fmt: skip
    if kind == "bytes":
        return draw(st.binary(min_size=0, max_size=512))
    if kind == "huge":
        return to_json({**valid, "pad": "x" * draw(st.integers(MAX_BYTES, MAX_BYTES + 4096))})
    if kind == "not-object":
        return to_json(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(),
                                      st.text(max_size=20), st.none())))  # fmt: skip
    if kind == "version":
        return to_json({**valid, "schema_version": draw(st.integers().filter(lambda v: v != 1))})
    field = draw(st.sampled_from(sorted(valid)))
    if kind == "missing":
        valid.pop(field)
    elif kind == "extra":
        valid[draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in VALID[contract]))] = 1
    else:
        valid[field] = draw(WRONG_TYPES if kind == "wrong" else EDGE_TEXT)
    return to_json(valid)


def refused(contract: type[Event], payload: bytes) -> bool:
    """Whether the consumers must refuse the payload, by their own decoding rules (the
    generator may draw a valid one, or a legacy request the migration-service takes)."""
    record = SimpleNamespace(value=payload, topic=contract.topic)
    try:
        decode(record, contract, MAX_BYTES)  # type: ignore[arg-type]
    except Rejected:
        return True
    except NotForUs:
        return False
    return False


def generate(contract: type[Event], count: int) -> list[bytes]:
    """`count` distinct payloads the contract refuses, drawn by hypothesis (reproducibly, a
    batch per example: hypothesis's cost is per example); `find` stops once there are enough."""
    found: dict[bytes, None] = {}

    def enough(payloads: list[bytes]) -> bool:
        for payload in payloads:
            if refused(contract, payload):
                found[payload] = None
        return len(found) >= count

    find(
        st.lists(invalid_payload(contract), min_size=BATCH, max_size=BATCH), enough,
        settings=hyp_settings(max_examples=20 * count // BATCH, derandomize=True, database=None,
                              phases=[Phase.generate], suppress_health_check=list(HealthCheck)),
    )  # fmt: skip
    return list(found)[:count]


@pytest.fixture(scope="module")
def services(settings, logs_dir, tmp_path_factory):
    """Every consumer of the four topics: the rag-service and lora-service (jobs, cancels,
    compensations), the migration-service (legacy requests); each also runs the job tracker."""
    work = tmp_path_factory.mktemp("topic-fuzz")
    small = {"LORAG_KAFKA_MAX_MESSAGE_BYTES": str(MAX_BYTES), "HF_HUB_OFFLINE": "1"}
    rag_env = {"LORAG_CHROMA_PATH": str(work / "chroma"), **small}
    lora_vars = {**lora_env(work / "models", work / "lora", 0), "LORAG_LORA_SERVE": "false"}
    running = {
        "rag": start_service("lorag_rag", logs_dir, ready_timeout=READY_S, **rag_env),
        "lora": start_service(
            "lorag_lora", logs_dir, ready_timeout=READY_S, **{**lora_vars, **small}
        ),
        "migration": start_service("lorag_migration", logs_dir, ready_timeout=READY_S, **small),
    }
    yield running
    for service in running.values():
        service.stop()


async def publish_all(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    """Publish (topic, key, value) in one batch: send everything, then wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for topic, key, value in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def meaningless_jobs(run: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Requests that pass the contract but are wrong in meaning, and the code each must end
    FAILED with."""

    def job(uri: str, training_type: str = "EXTERNAL_RAG", **params: Any) -> dict[str, Any]:
        return {
            "job_id": f"job-meaning-{run}-{uuid.uuid4().hex[:6]}", "training_type": training_type,
            "owner": "mallory", "datasets": [{"uri": uri}], "parameters": params or None,
        }  # fmt: skip

    mine = "s3://lorag-datasets/uploads/mallory/x/"
    alices_eval = "s3://lorag-datasets/uploads/alice/e.jsonl"
    return {
        "other-bucket": (job("s3://lorag-adapters/alice/v1/"), "DATASET_BUCKET_NOT_ALLOWED"),
        "others-upload": (job("s3://lorag-datasets/uploads/alice/ds-1/"), "DATASET_NOT_FOUND"),
        "others-eval": (job(mine, kind="rag", eval_file=alices_eval), "DATASET_NOT_FOUND"),
        "lora-elsewhere": (
            job("s3://lorag-artifacts/x/", "LOCAL_LORA"),
            "DATASET_BUCKET_NOT_ALLOWED",
        ),
        "unknown-base-model": (
            job(mine, "LOCAL_LORA", kind="lora", base_model="no-such-org/no-such-model"),
            "",
        ),  # ends FAILED with the lora-service's own code for it
    }


def test_fuzzed_topics_are_dead_lettered_and_nothing_restarts(settings, services):
    bootstrap = settings.kafka.bootstrap_servers
    pids = {name: s.process.pid for name, s in services.items()}
    run = uuid.uuid4().hex[:8]
    expected: dict[str, dict[str, bytes]] = {}  # topic -> key -> payload
    messages = []
    for contract in VALID:
        payloads = generate(contract, PER_TOPIC)
        keys = {f"fuzz-{run}-{contract.topic}-{n}": p for n, p in enumerate(payloads)}
        expected[contract.topic] = keys
        messages += [(contract.topic, k.encode(), p) for k, p in keys.items()]
    wrong = meaningless_jobs(run)
    for body, _ in wrong.values():
        JobRequested.model_validate(body)  # passes the contract: only meaning is wrong
        messages.append(("job.requested", body["job_id"].encode(), to_json(body)))
    total = sum(len(k) for k in expected.values())
    assert total >= 1000, total
    started = time.monotonic()
    asyncio.run(publish_all(bootstrap, messages))

    for topic, keys in expected.items():
        letters = asyncio.run(read_topic(
            bootstrap, dead_letter_topic(topic), timeout=300,
            until=lambda seen, keys=keys: keys.keys() <= {m.get("key") for m in seen},
        ))  # fmt: skip
        by_key: dict[str, list[dict[str, Any]]] = {}
        for letter in letters:
            by_key.setdefault(letter.get("key"), []).append(letter)
        missing = sorted(set(keys) - set(by_key))
        assert not missing, f"{topic}: {len(missing)} not dead-lettered, e.g. {keys[missing[0]]!r}"
        for key in keys:
            codes = {m["reason_code"] for m in by_key[key]}
            assert codes <= DECODE_CODES, (key, codes, keys[key][:200])
    for name, (body, code) in wrong.items():
        job = asyncio.run(wait_for_job(settings.postgres_dsn, body["job_id"], state="FAILED",
                                       timeout=120))  # fmt: skip
        assert job["error"]["code"] == code or (not code and job["error"]["code"]), (
            name, job["error"],
        )  # fmt: skip
    handled_s = time.monotonic() - started

    for name, service in services.items():
        assert service.process.poll() is None, f"{name} exited:\n{service.log()}"
        assert service.process.pid == pids[name]
        assert httpx.get(f"{service.url}/ready", timeout=10).status_code == 200, name
    # Only valid events create job rows: the fuzzed ones name one job id, or none at all.
    fuzzed = asyncio.run(
        fetch_all(settings.postgres_dsn, "SELECT state FROM jobs WHERE job_id = %s", JOB)
    )
    assert len(fuzzed) <= 1

    # A valid job afterwards succeeds.
    objects = ObjectStore.from_settings(settings.s3)
    notes = b"# After the storm\nThe consumers survived the fuzzing and went on.\n"
    objects.put_bytes("lorag-datasets", f"uploads/fuzz/ds-{run}/notes.md", notes)
    after = JobRequested(
        job_id=f"job-after-fuzz-{run}", training_type="EXTERNAL_RAG", owner="fuzz",
        datasets=[{"uri": f"s3://lorag-datasets/uploads/fuzz/ds-{run}/"}],
        parameters={"kind": "rag", "chunk_tokens": 64, "chunk_overlap": 8},
    )  # fmt: skip
    asyncio.run(
        publish_all(bootstrap, [("job.requested", after.job_id.encode(), after.to_bytes())])
    )
    asyncio.run(wait_for_job(settings.postgres_dsn, after.job_id, state="SUCCEEDED", timeout=180))
    print(f"\ntopic fuzz: {total} invalid payloads dead-lettered, {len(wrong)} meaningless jobs "
          f"FAILED with codes, in {handled_s:.1f} s; no restarts")  # fmt: skip
