"""Issue 12 against the real Jaeger of the test stack: one job is one trace across processes,
stage spans in order, a resumed job stays in its trace; every /metrics parses and counts jobs."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lorag_core.contracts import DatasetRef, JobRequested, RagParameters
from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from tests.integration.test_lora_helpers import lora_env, start_lora, tiny_models  # noqa: F401
from tests.integration.test_rag_ingest import PARAMS, mixed_dataset, upload, wait_stage
from tests.support.db import wait_for_job
from tests.support.gateway import service_urls, start_gateway
from tests.support.jaeger import ancestors, trace_ids_of, wait_for_spans
from tests.support.kafka import publish_raw
from tests.support.processes import start_service

# Services load models (the hybrid: three processes), a crash test restarts one: slow when shared.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
RAG_STAGES = ["rag.validating", "rag.chunking", "rag.embedding", "rag.indexing"]
QA = [
    {"question": "What is the staging cluster called?", "answer": "harbor-seventeen"},
    {"question": "Who rotates on call?", "answer": "the platform team"},
    {"question": "When does the rotation change?", "answer": "every Tuesday"},
]


async def submit(settings, uri: str, **params) -> str:
    """Publish an EXTERNAL_RAG request as a traced publisher (the gateway) does: with a
    traceparent header, so every consumer group continues one trace."""
    job_id = f"job-rag-{uuid.uuid4().hex[:10]}"
    datasets, parameters = (DatasetRef(uri=uri),), RagParameters(**params)
    event = JobRequested(
        job_id=job_id, training_type="EXTERNAL_RAG", datasets=datasets, parameters=parameters
    )
    traceparent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
    await publish_raw(settings.kafka.bootstrap_servers, event.topic, event.to_bytes(),
                      key=job_id.encode(), headers={"traceparent": traceparent})  # fmt: skip
    return job_id


def metrics_of(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A service's /metrics parsed by prometheus-client's own parser: sample -> value."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def finished(samples: dict, service: str, training_type: str) -> float:
    labels = (("outcome", "SUCCEEDED"), ("service", service), ("training_type", training_type))
    return samples.get(("lorag_jobs_finished_total", labels), 0.0)


# The rag-services this module's `rag` fixture started: the hybrid's stack stops them first.
SOLO_RAGS: list[dict] = []


@pytest.fixture(scope="module")
def rag(settings, tracker, logs_dir, tmp_path_factory):
    state = tmp_path_factory.mktemp("obs-rag")
    env = {"LORAG_WORKER_LEASE_S": "4", "LORAG_CHROMA_PATH": str(state / "chroma")}
    holder = {"env": env, "process": start_service("lorag_rag", logs_dir, ready_timeout=180, **env)}
    SOLO_RAGS.append(holder)
    yield holder
    if holder["process"].process.poll() is None:
        holder["process"].stop()


async def test_an_external_rag_jobs_trace_holds_its_stages_in_order_and_metrics_move(
    settings, rag, tracker
):
    objects = ObjectStore.from_settings(settings.s3)
    before = metrics_of(rag["process"].url)
    files = {f"doc{i}.md": f"# Doc {i}\n" + "alpha beta gamma delta. " * 40 for i in range(3)}
    job_id = await submit(settings, upload(objects, {k: v.encode() for k, v in files.items()}),
                          kb=f"obs-{uuid.uuid4().hex[:6]}", **PARAMS)  # fmt: skip
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=120)
    spans = await asyncio.to_thread(
        wait_for_spans, job["trace_id"], {*RAG_STAGES, "rag-service job", "tracker.record_request"}
    )
    assert await asyncio.to_thread(trace_ids_of, [job_id]) == {job["trace_id"]}
    stages = [s for s in spans if s.name in RAG_STAGES]
    assert [s.name for s in stages] == RAG_STAGES  # one each, in start order
    assert all(s.tags["lorag.job_id"] == job_id and s.service == "rag-service" for s in stages)
    assert stages[0].tags["lorag.documents"] == 3 and stages[1].tags["lorag.chunk_tokens"] > 0
    assert stages[2].tags["lorag.chunks"] > 0  # cut and embedded in one pipeline
    # Every service hosts the job tracker (one consumer group), so whichever process holds the
    # request's partition records it: the span is in the trace, from one of this test's services.
    trackers = [s for s in spans if s.name == "tracker.record_request"]
    assert trackers and {s.service for s in trackers} <= {"migration-service", "rag-service"}
    assert any(s.name.startswith("job.progress") for s in spans)  # progress events joined
    assert any(s.tags.get("db.system") == "postgresql" for s in spans)  # psycopg instrumented
    statements = [str(s.tags.get("db.statement", "")) for s in spans]
    assert any("INSERT INTO jobs" in q for q in statements)  # the tracker's own work is there
    # ... and its bookkeeping is not: attempt counts and session settings make no spans
    assert not [q for q in statements if "delivery_attempts" in q or "synchronous_commit" in q]
    assert not [q for q in statements if "idle_in_transaction_session_timeout" in q]

    after = metrics_of(rag["process"].url)
    assert finished(after, "rag-service", "EXTERNAL_RAG") == (
        finished(before, "rag-service", "EXTERNAL_RAG") + 1
    )
    names = {name for name, _ in after}
    assert {"lorag_jobs_started_total", "lorag_job_duration_seconds_bucket",
            "lorag_rag_chunks_indexed_total", "lorag_work_backlog",
            "faststream_received_processed_messages_total"} <= names  # fmt: skip
    # the tracker's process (migration-service) parses too, and froze its started heap
    assert metrics_of(tracker.url)[("lorag_gc_frozen_objects", ())] > 10_000


async def test_a_job_resumed_after_sigkill_continues_in_the_same_trace(settings, rag):
    objects = ObjectStore.from_settings(settings.s3)
    kb = f"obs-crash-{uuid.uuid4().hex[:6]}"
    job_id = await submit(settings, upload(objects, mixed_dataset()), kb=kb, **PARAMS)
    await wait_stage(settings, job_id, 40)
    rag["process"].kill()
    logs = rag["process"].log_path.parent
    rag["process"] = await asyncio.to_thread(
        start_service, "lorag_rag", logs, ready_timeout=180, **rag["env"]
    )
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=180)
    assert job["result"]["summary"]["attempt"] == 2
    spans = await asyncio.to_thread(wait_for_spans, job["trace_id"], {"rag.indexing"})
    runs = [s for s in spans if s.name == "rag-service job"]
    # The killed run's span never ended (never exported); the second run's is in the same trace.
    assert [r.tags["lorag.attempt"] for r in runs] == [2]
    assert await asyncio.to_thread(trace_ids_of, [job_id]) == {job["trace_id"]}
    assert any(s.name == "rag.validating" and s.tags["lorag.job_id"] == job_id for s in spans)


@pytest.fixture(scope="module")
def hybrid_stack(settings, tracker, logs_dir, tmp_path_factory, tiny_models):  # noqa: F811
    # A rag-service still running from the tests above claims from the same work queue, so it
    # could take the hybrid's rag sub-job into its own Chroma, and its counters, not this stack's,
    # would move.
    for holder in SOLO_RAGS:
        if holder["process"].process.poll() is None:
            holder["process"].stop()
    state = tmp_path_factory.mktemp("obs-hybrid")
    lora = start_lora(logs_dir, lora_env(tiny_models, state / "lora", free_port()))
    started = [lora]
    try:
        rag = start_service("lorag_rag", logs_dir, LORAG_CHROMA_PATH=str(state / "chroma"),
                            **service_urls(lora))  # fmt: skip
        started.append(rag)
        orchestrator = start_service(
            "lorag_hybrid", logs_dir, LORAG_HYBRID_EVAL_PAIRS="3", **service_urls(rag, lora)
        )
        started.append(orchestrator)
        gateway = start_gateway(logs_dir, rag, lora, orchestrator)
        started.append(gateway.process)
        yield {"gateway": gateway, "services": {"rag-service": rag, "lora-service": lora,
               "hybrid-orchestrator": orchestrator, "gateway": gateway.process}}  # fmt: skip
    finally:
        for service in reversed(started):
            service.stop()


async def test_a_local_hybrid_from_the_cli_is_exactly_one_trace(settings, hybrid_stack, tmp_path):
    gateway = hybrid_stack["gateway"]
    before = {n: metrics_of(s.url) for n, s in hybrid_stack["services"].items()}
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.md").write_text("# Ops\nThe staging cluster is called harbor-seventeen.\n" * 8)
    (data / "qa.jsonl").write_text("\n".join(json.dumps(p) for p in QA * 4) + "\n")
    minion = f"obs-{uuid.uuid4().hex[:6]}"
    done = await asyncio.to_thread(
        gateway.cli, "submit", "LOCAL_HYBRID", "--dataset", str(data), "--param",
        f"minion={minion}", "--param", "rag.chunk_tokens=64", "--param", "lora.max_steps=6",
        "--param", "lora.batch_size=4", "--param", "lora.max_seq_len=64", "--wait", "--json",
        "--timeout", "600", timeout=700,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert job["state"] == "SUCCEEDED", job
    job_id, trace_id = job["job_id"], job["trace_id"]
    subs = [f"{job_id}.rag", f"{job_id}.lora"]
    spans = await asyncio.to_thread(
        wait_for_spans, trace_id,
        {"rag.embedding", "lora.training", "lora.storing", "saga.evaluating",
         "hybrid-orchestrator job", "tracker.record_request", "POST /v1/chat/completions"},
        timeout=90,
    )  # fmt: skip
    assert await asyncio.to_thread(trace_ids_of, [job_id, *subs]) == {trace_id}
    services = {s.service for s in spans}
    assert {"gateway", "rag-service", "lora-service", "hybrid-orchestrator"} <= services
    by_id = {s.span_id: s for s in spans}
    hybrid_run = next(s for s in spans if s.name == "hybrid-orchestrator job")
    for name in ("rag-service job", "lora-service job"):
        run = next(s for s in spans if s.name == name)
        assert hybrid_run in ancestors(run, by_id), f"{name} is not under the hybrid's run"
    serving = [s for s in spans if s.service == "lora-service" and "chat/completions" in s.name]
    assert serving and all(hybrid_run in ancestors(s, by_id) for s in serving)
    training = next(s for s in spans if s.name == "lora.training")
    assert training.tags["lorag.job_id"] == f"{job_id}.lora"
    shown = await asyncio.to_thread(gateway.cli, "jobs", "show", job_id)
    assert f"/trace/{trace_id}" in shown.stdout
    after = {n: metrics_of(s.url) for n, s in hybrid_stack["services"].items()}
    for service, kind in (
        ("hybrid-orchestrator", "LOCAL_HYBRID"),
        ("rag-service", "EXTERNAL_RAG"),
        ("lora-service", "LOCAL_LORA"),
    ):
        assert (
            finished(after[service], service, kind) == finished(before[service], service, kind) + 1
        )
