"""Hybrid sagas with the real rag-service, lora-service and hybrid-orchestrator processes."""

import asyncio
import json
import signal
import uuid

import openai
import pytest

from lorag_api.errors import NotFound
from lorag_api.hybrid import Ask, HybridClient
from lorag_core.contracts import (
    DatasetRef,
    HybridParameters,
    JobRequested,
    LoraParameters,
    RagParameters,
)
from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from tests.integration.test_lora_helpers import lora_env, start_lora, tiny_models  # noqa: F401
from tests.support.db import fetch_all, wait_for_job
from tests.support.facts_corpus import dataset_files, split
from tests.support.gateway import make_token, start_gateway
from tests.support.kafka import publish_raw, read_topic
from tests.support.processes import start_service
from tests.support.topic_log import read_whole_topic

pytestmark = pytest.mark.integration
FACT = "The staging cluster is called harbor-seventeen."
QA = [
    {"question": "What is the staging cluster called?", "answer": "harbor-seventeen"},
    {"question": "Who rotates on call?", "answer": "the platform team"},
    {"question": "When does the rotation change?", "answer": "every Tuesday"},
]
# The rag-service fails these sub-jobs with a retryable error: a flaky hybrid's first RAG attempt,
# every attempt of a broken one's.
FAULTS = r"job-flaky-[0-9a-f]+\.rag|job-broken-[0-9a-f]+\.rag(\.[0-9]+)?"


@pytest.fixture(scope="module")
def services(settings, tracker, logs_dir, tmp_path_factory, tiny_models):  # noqa: F811
    state = tmp_path_factory.mktemp("hybrid")
    chroma = {"LORAG_CHROMA_PATH": str(state / "chroma"), "LORAG_WORKER_LEASE_S": "4"}
    api_port = free_port()
    lora = start_lora(logs_dir, lora_env(tiny_models, state / "lora", api_port))
    local_llm = {"LORAG_LORA_OPENAI_URL": f"http://127.0.0.1:{api_port}/v1"}
    rag = start_service("lorag_rag", logs_dir, **chroma, **local_llm, LORAG_FAULT_FAIL_JOBS=FAULTS)
    env = {
        **local_llm,
        "LORAG_RAG_SERVICE_URL": rag.url,
        "LORAG_WORKER_LEASE_S": "4",
        "LORAG_HYBRID_EVAL_PAIRS": "3",
        "LORAG_HYBRID_RETRY_BACKOFF_S": "0.5",
    }
    orchestrator = start_service("lorag_hybrid", logs_dir, **env)
    running = {"env": env, "orchestrator": orchestrator, "logs": logs_dir, "lora": lora,
               "rag": rag, "chroma": state / "chroma"}  # fmt: skip
    yield running
    for service in (running["orchestrator"], rag, lora):
        service.stop()


def chroma_has(path, kb: str) -> bool:
    """Whether Chroma (the rag-service's folder, read from here) holds the KB's collection."""
    import chromadb

    from lorag_rag.adapters.chroma_store import collection_name

    names = {c.name for c in chromadb.PersistentClient(path=str(path)).list_collections()}
    return collection_name(kb) in names


def upload(settings, files: dict[str, str]) -> str:
    objects = ObjectStore.from_settings(settings.s3)
    prefix = f"test-hybrid-{uuid.uuid4().hex[:8]}"
    for name, text in files.items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{name}", text.encode())
    return f"s3://lorag-datasets/{prefix}/"


async def submit(
    settings, uri: str, minion: str, kind: str = "hybrid", training_type="LOCAL_HYBRID", **lora
) -> str:
    job_id = f"job-{kind}-{uuid.uuid4().hex[:8]}"
    params = HybridParameters(
        minion=minion,
        rag=RagParameters(chunk_tokens=64, chunk_overlap=8),
        lora=LoraParameters(**{"max_steps": 6, "batch_size": 4, "max_seq_len": 64, **lora}),
    )
    event = JobRequested(
        job_id=job_id,
        training_type=training_type,
        datasets=(DatasetRef(uri=uri),),
        parameters=params,
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    return job_id


async def test_a_local_hybrid_makes_a_minion_that_answers_from_the_dataset(settings, services):
    minion = f"ada-{uuid.uuid4().hex[:6]}"
    notes = "\n\n".join([FACT, "The production cluster is called lighthouse.", "Coffee is free."])
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in QA), "notes.md": notes})
    job_id = await submit(settings, uri, minion)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=300)
    summary = job["result"]["summary"]
    assert summary["minion"] == minion and summary["eval_pairs"] == 3
    kinds = {a["kind"] for a in job["result"]["artifacts"]}
    assert {"knowledge_base", "adapter"} <= kinds
    subs = await fetch_all(
        settings.postgres_dsn,
        "SELECT job_id, state, stage_name FROM jobs WHERE parent_job_id = %s",
        job_id,
    )
    assert {(s["stage_name"], s["state"]) for s in subs} == {
        ("rag", "SUCCEEDED"),
        ("lora", "SUCCEEDED"),
    }
    log = await fetch_all(
        settings.postgres_dsn,
        "SELECT stage, percent, metrics FROM job_progress WHERE job_id = %s ORDER BY seq",
        job_id,
    )
    percents = [r["percent"] for r in log if r["percent"] is not None]
    assert percents == sorted(percents)  # one progress view, never backwards
    metrics = [r["metrics"] or {} for r in log]
    assert any("loss" in m for m in metrics) and any("chunks_per_s" in m for m in metrics)

    async with HybridClient(
        services["orchestrator"].url, settings.service_secret, timeout=180
    ) as minions:
        answer = await minions.ask(
            "default", minion, Ask(question="What is the staging cluster called?", variant="rag")
        )
        assert [m.name for m in await minions.list_minions("default") if m.name == minion]
        assert minion not in {m.name for m in await minions.list_minions("someone-else")}
        with pytest.raises(NotFound):
            await minions.ask("someone-else", minion, Ask(question="Who is on call?"))
    [reply] = answer.replies
    assert reply.variant == "rag" and reply.error is None, reply.error
    assert any("harbor-seventeen" in s.text for s in reply.sources)  # only the dataset says so
    assert (
        len(await fetch_all(settings.postgres_dsn, "SELECT 1 FROM minions WHERE name = %s", minion))
        == 1
    )
    xp = await read_topic(
        settings.kafka.bootstrap_servers,
        "minion.xp",
        until=lambda seen: any(e["minion_id"] == minion for e in seen),
    )
    earned = next(e for e in xp if e["minion_id"] == minion)
    assert earned["job_id"] == job_id and earned["work"]["chunks"] > 0
    assert "over_base_model" in earned["improvement"]
    # The finished hybrid recorded what it measured, for the recommender's "similar datasets".
    (outcome,) = await fetch_all(
        settings.postgres_dsn, "SELECT * FROM training_outcomes WHERE job_id = %s", job_id
    )
    assert outcome["scores"] == {
        "rag": summary["score_rag"],
        "lora": summary["score_lora"],
        "lora+rag": summary["score_lora_rag"],
        "extractive": summary["score_extractive"],
    }
    assert outcome["tokens"] > 0 and outcome["seconds"] > 0 and outcome["shape"]


async def test_lorag_ask_answers_held_out_questions_with_the_fact_itself(settings, services):
    """The tiny local model writes noise; the extractive variant quotes the fact, and per-question
    routing picks it for factual questions the evaluation never asked."""
    minion = f"facts-{uuid.uuid4().hex[:6]}"
    job_id = await submit(settings, upload(settings, dataset_files()), minion)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=400)
    summary = job["result"]["summary"]
    assert summary["best_variant"] == "extractive", summary
    gateway = start_gateway(
        services["logs"], services["orchestrator"], services["rag"], services["lora"]
    )
    try:
        _, held_out = split()
        answers = []
        for _, question, fact in held_out:
            run = await asyncio.to_thread(gateway.cli, "ask", minion, question, "--json")
            assert run.returncode == 0, run.stdout + run.stderr
            answers.append((question, fact, json.loads(run.stdout)))
    finally:
        gateway.process.stop()
    carried = [q for q, fact, said in answers if fact.lower() in said["answer"].lower()]
    print(f"held-out answers carrying the fact: {len(carried)}/{len(held_out)}")
    assert len(carried) >= 0.8 * len(held_out), [
        (q, s["variant"], s["answer"]) for q, _, s in answers
    ]
    for _, _, said in answers:  # which variant answered, and why: its predicted scores
        assert said["variant"] == said["routing"]["variant"] and set(said["scores"]) >= {
            "extractive",
            "rag",
            "lora",
            "lora+rag",
        }
        assert said["routing"]["basis"] == "nearest evaluated questions"
        assert said["routing"]["neighbours"] and said["sources"]


async def test_a_failing_lora_stage_fails_the_hybrid_and_removes_its_knowledge_base(
    settings, services
):
    minion = f"bob-{uuid.uuid4().hex[:6]}"
    # HTML is a dataset RAG reads and LoRA cannot use.
    uri = upload(settings, {"page.html": f"<html><body><p>{FACT}</p></body></html>"})
    job_id = await submit(settings, uri, minion)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=300)
    assert job["error"]["code"] == "STAGE_FAILED" and "lora" in job["error"]["message"]
    # The RAG stage really made the knowledge base: it ended SUCCEEDED with chunks indexed.
    rag = await wait_for_job(settings.postgres_dsn, f"{job_id}.rag", timeout=60)
    made = await fetch_all(
        settings.postgres_dsn,
        "SELECT result FROM job_progress WHERE job_id = %s AND state = 'SUCCEEDED'",
        rag["job_id"],
    )
    assert made, f"the RAG stage never succeeded: {rag['state']} {rag['error']}"
    assert made[0]["result"]["summary"]["chunks"] >= 1
    assert any(a["kind"] == "knowledge_base" for a in made[0]["result"]["artifacts"])
    # ... and compensation removed it from Postgres and from Chroma.
    for _ in range(100):
        kbs = await fetch_all(
            settings.postgres_dsn, "SELECT 1 FROM rag_knowledge_bases WHERE name = %s", minion
        )
        if not kbs and not chroma_has(services["chroma"], minion):
            break
        await asyncio.sleep(0.2)
    assert not kbs, "the knowledge base of the failed hybrid was not removed"
    assert not chroma_has(services["chroma"], minion), "its chunks are still in Chroma"


async def test_bad_hybrids_fail_before_any_sub_job_starts(settings, services):
    missing = await submit(settings, "s3://lorag-datasets/does-not-exist/", "carl")
    job = await wait_for_job(settings.postgres_dsn, missing, state="FAILED", timeout=60)
    assert job["error"]["code"] == "DATASET_NOT_FOUND"
    conflicting = f"job-hybrid-{uuid.uuid4().hex[:8]}"
    params = HybridParameters(minion="dora", rag=RagParameters(kb="other"))
    event = JobRequested(
        job_id=conflicting,
        training_type="LOCAL_HYBRID",
        datasets=(DatasetRef(uri="s3://lorag-datasets/x/"),),
        parameters=params,
    )
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=conflicting.encode()
    )
    job = await wait_for_job(settings.postgres_dsn, conflicting, state="FAILED", timeout=60)
    assert job["error"]["code"] == "HYBRID_PARAMETERS_CONFLICT"
    for parent in (missing, conflicting):
        assert not await fetch_all(
            settings.postgres_dsn, "SELECT 1 FROM jobs WHERE parent_job_id = %s", parent
        )


async def test_a_hybrid_no_machine_can_train_is_refused_by_the_saga_before_any_sub_job(
    settings, services
):
    """The resource check runs in the orchestrator on a request from Kafka, not only in a unit."""
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in QA)})
    # An 8B model at 1,024 sequences of 32,768 tokens a step needs terabytes: no machine has it.
    job_id = await submit(
        settings, uri, f"ivy-{uuid.uuid4().hex[:6]}", kind="huge",
        base_model="meta-llama/Llama-3.1-8B", batch_size=1024, max_seq_len=32768,
    )  # fmt: skip
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=120)
    assert job["error"]["code"] == "TARGET_UNMEETABLE" and "GB" in job["error"]["message"]
    requested = await read_whole_topic(settings.kafka.bootstrap_servers, "job.requested")
    assert not [e for e in requested if e.get("parent_job_id") == job_id]  # none even asked for
    assert not await fetch_all(
        settings.postgres_dsn, "SELECT 1 FROM jobs WHERE parent_job_id = %s", job_id
    )
    assert not await fetch_all(
        settings.postgres_dsn, "SELECT 1 FROM training_outcomes WHERE job_id = %s", job_id
    )


async def test_a_restarted_orchestrator_finishes_the_saga_without_rerunning_stages(
    settings, services
):
    minion = f"eve-{uuid.uuid4().hex[:6]}"
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in QA), "notes.md": FACT})
    job_id = await submit(settings, uri, minion)
    await wait_for_job(settings.postgres_dsn, job_id, state="RUNNING", timeout=120)
    services["orchestrator"].kill()
    services["orchestrator"] = start_service("lorag_hybrid", services["logs"], **services["env"])
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=300)
    assert job["result"]["summary"]["minion"] == minion
    subs = await fetch_all(
        settings.postgres_dsn, "SELECT job_id FROM jobs WHERE parent_job_id = %s", job_id
    )
    assert sorted(s["job_id"] for s in subs) == [f"{job_id}.lora", f"{job_id}.rag"]
    work = await fetch_all(
        settings.postgres_dsn,
        "SELECT service, attempts FROM work_items WHERE job_id = ANY(%s)",
        [s["job_id"] for s in subs],
    )
    assert sorted((w["service"], w["attempts"]) for w in work) == [
        ("lora-service", 1),
        ("rag-service", 1),
    ]  # each stage ran once
    hybrid = await fetch_all(
        settings.postgres_dsn, "SELECT attempts FROM work_items WHERE job_id = %s", job_id
    )
    assert hybrid[0]["attempts"] == 2  # the saga itself was taken over


async def sub_jobs(settings, job_id: str) -> dict[str, str]:
    rows = await fetch_all(
        settings.postgres_dsn, "SELECT job_id, state FROM jobs WHERE parent_job_id = %s", job_id
    )
    return {r["job_id"].removeprefix(job_id): r["state"] for r in rows}


async def test_a_retryable_stage_failure_is_retried_and_the_saga_succeeds(settings, services):
    minion = f"gil-{uuid.uuid4().hex[:6]}"
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in QA), "notes.md": FACT})
    job_id = await submit(settings, uri, minion, kind="flaky")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=300)
    assert job["result"]["summary"]["kb"] == minion
    assert await sub_jobs(settings, job_id) == {
        ".rag": "FAILED",  # the injected retryable fault
        ".rag.2": "SUCCEEDED",  # the retry, after the backoff
        ".lora": "SUCCEEDED",  # the other stage ran once
    }
    first = await wait_for_job(settings.postgres_dsn, f"{job_id}.rag", state="FAILED")
    assert first["error"]["code"] == "FAULT_INJECTED" and first["error"]["retryable"]


async def test_a_stage_failing_every_retry_fails_the_saga_and_compensates(settings, services):
    minion = f"hal-{uuid.uuid4().hex[:6]}"
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in QA), "notes.md": FACT})
    job_id = await submit(settings, uri, minion, kind="broken")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=300)
    assert job["error"]["code"] == "STAGE_FAILED" and "FAULT_INJECTED" in job["error"]["message"]
    subs = await sub_jobs(settings, job_id)
    # max_retries is 2: three attempts, then no more
    assert {k: v for k, v in subs.items() if k.startswith(".rag")} == {
        ".rag": "FAILED",
        ".rag.2": "FAILED",
        ".rag.3": "FAILED",
    }
    for _ in range(100):  # the LoRA stage is cancelled, or its finished adapter withdrawn
        lora = await wait_for_job(settings.postgres_dsn, f"{job_id}.lora")
        adapters = await fetch_all(
            settings.postgres_dsn,
            "SELECT status FROM lora_adapters WHERE job_id = %s",
            f"{job_id}.lora",
        )
        if lora["state"] == "CANCELLED" or adapters == [{"status": "withdrawn"}]:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"LoRA stage not compensated: {lora['state']}, {adapters}")


async def test_a_stalled_stage_is_detected_and_the_saga_compensates(settings, services):
    """The lora-service is frozen (SIGSTOP) mid-training: no progress, so the saga fails it."""
    services["orchestrator"].stop()
    services["orchestrator"] = start_service(
        "lorag_hybrid", services["logs"], **services["env"], LORAG_HYBRID_STALL_S="5",
        LORAG_HYBRID_CANCEL_WAIT_S="3",  # the frozen stage cannot end: do not wait long for it
    )  # fmt: skip
    minion = f"fay-{uuid.uuid4().hex[:6]}"
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in QA), "notes.md": FACT})
    job_id = await submit(settings, uri, minion, max_steps=3000)
    lora = services["lora"].process
    try:
        await wait_for_job(settings.postgres_dsn, f"{job_id}.lora", state="RUNNING", timeout=120)
        await wait_for_job(settings.postgres_dsn, f"{job_id}.rag", state="SUCCEEDED", timeout=120)
        lora.send_signal(signal.SIGSTOP)
        # The saga's own record, not the tracker's: the frozen process is also a member of the
        # job tracker's shared consumer groups, which wait on it for up to about 8 s
        # (test_tracker_stall.py), time this test does not need to spend.
        for _ in range(600):
            ended = await fetch_all(
                settings.postgres_dsn,
                "SELECT outcome FROM work_items WHERE service = 'hybrid-orchestrator'"
                " AND job_id = %s AND status = 'done'",
                job_id,
            )
            if ended:
                break
            await asyncio.sleep(0.1)
        assert ended == [{"outcome": "FAILED"}], "the stalled stage did not fail the saga in 60 s"
    finally:
        lora.send_signal(signal.SIGCONT)
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=120)
    assert job["error"]["code"] == "STAGE_STALLED" and "lora" in job["error"]["message"]
    for _ in range(100):  # the finished RAG stage is compensated: its knowledge base goes
        kbs = await fetch_all(
            settings.postgres_dsn, "SELECT 1 FROM rag_knowledge_bases WHERE name = %s", minion
        )
        if not kbs:
            break
        await asyncio.sleep(0.2)
    assert not kbs
    # ...and the thawed lora-service obeys the cancellation it was sent
    await wait_for_job(settings.postgres_dsn, f"{job_id}.lora", state="CANCELLED", timeout=60)


@pytest.fixture(scope="module")
def provider(settings, services, tiny_models, tmp_path_factory):  # noqa: F811
    """A second lora-service as the fine-tuning provider, with its own API port and key; the
    module's orchestrator is replaced by one that trains EXTERNAL_HYBRID there."""
    api_port = free_port()
    work = tmp_path_factory.mktemp("provider")
    process = start_lora(services["logs"], lora_env(tiny_models, work, api_port))
    url, key = f"http://127.0.0.1:{api_port}/v1", make_token("default")
    services["orchestrator"].stop()
    services["orchestrator"] = start_service(
        "lorag_hybrid", services["logs"], **services["env"], LORAG_FINETUNE_BASE_URL=url,
        LORAG_FINETUNE_API_KEY=key, LORAG_FINETUNE_POLL_S="0.5",
    )  # fmt: skip
    yield {"url": url, "key": key, "openai": openai.OpenAI(base_url=url, api_key=key)}
    process.stop()


async def test_an_external_hybrid_trains_at_the_fine_tuning_provider(settings, provider):
    minion = f"ext-{uuid.uuid4().hex[:6]}"
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in QA), "notes.md": FACT})
    job_id = await submit(settings, uri, minion, training_type="EXTERNAL_HYBRID")
    job = await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=400)
    summary = job["result"]["summary"]
    assert (
        summary["ftjob"].startswith("ftjob-") and summary["adapter"] == summary["fine_tuned_model"]
    )
    at_provider = provider["openai"].fine_tuning.jobs.retrieve(summary["ftjob"])
    assert at_provider.status == "succeeded"
    assert at_provider.fine_tuned_model == summary["fine_tuned_model"]
    assert at_provider.training_file  # the dataset, uploaded as chat JSONL
    (row,) = await fetch_all(settings.postgres_dsn, "SELECT * FROM minions WHERE name = %s", minion)
    assert row["llm"]["ftjob"] == summary["ftjob"] and row["adapter"] == summary["fine_tuned_model"]
    assert row["llm"]["provider"] == provider["url"]
    log = await fetch_all(
        settings.postgres_dsn, "SELECT metrics FROM job_progress WHERE job_id = %s", job_id
    )
    assert any("loss" in (r["metrics"] or {}) for r in log)  # the provider's events, relayed


async def test_a_failing_external_hybrid_cancels_the_providers_job(settings, provider):
    minion = f"extfail-{uuid.uuid4().hex[:6]}"
    rows = [
        {"question": f"{r['question']} ({i})", "answer": r["answer"]}
        for i in range(100)
        for r in QA
    ]  # enough that the provider is still training when the saga fails
    uri = upload(settings, {"qa.jsonl": "\n".join(json.dumps(r) for r in rows), "notes.md": FACT})
    # the rag-service fails job-broken-*.rag on every attempt; the provider trains for long
    job_id = await submit(settings, uri, minion, kind="broken", training_type="EXTERNAL_HYBRID",
                          epochs=50, max_steps=None)  # fmt: skip
    job = await wait_for_job(settings.postgres_dsn, job_id, state="FAILED", timeout=300)
    assert job["error"]["code"] == "STAGE_FAILED" and "rag" in job["error"]["message"]
    client = provider["openai"]
    mine = [j for j in client.fine_tuning.jobs.list(limit=100) if j.suffix == minion]
    assert mine, "the provider never got the job"
    deadline = asyncio.get_running_loop().time() + 120
    while (status := client.fine_tuning.jobs.retrieve(mine[0].id).status) != "cancelled":
        assert status not in ("succeeded", "failed"), status
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.5)
