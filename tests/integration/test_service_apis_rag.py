"""The rag-service's and the orchestrator's APIs, called as other lorag processes call them.

Real processes: a rag-service that builds a knowledge base from a real EXTERNAL_RAG job, and a
hybrid-orchestrator that routes over the rag-service's API. Two OpenAI stubs stand in for the
external LLM and the lora-service's OpenAI API; the orchestrator's own lora-service address
has nothing listening, so its `lora` variant fails while the others answer.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_api.errors import Invalid, NotFound
from lorag_api.hybrid import Ask, HybridClient
from lorag_api.rag import AnswerRequest, ExtractRequest, Query, RagClient
from lorag_core.contracts import DatasetRef, JobRequested, RagParameters
from lorag_core.storage import ObjectStore
from lorag_hybrid.saga import store as minions
from lorag_local.stack import free_port
from tests.support.db import wait_for_job
from tests.support.kafka import publish_raw
from tests.support.openai_stub import openai_stub
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
RUN = uuid.uuid4().hex[:6]
ALICE, BOB = f"alice-{RUN}", f"bob-{RUN}"
FACTS = {
    "ops.md": "The on-call rotation changes every Tuesday at 09:00 UTC.",
    "infra.md": "The production cluster is called lighthouse.",
    "pets.md": "The office cat is named Pixel and likes warm laptops.",
}
QUESTION = "What is the production cluster called?"
NOTICE_WITHIN_S = 5.0  # a notice takes milliseconds; this bounds a loaded CI machine


@pytest.fixture(scope="module")
def llms():
    """(base URL, requests seen) of the external LLM and of the lora-service's OpenAI API."""
    with openai_stub() as external, openai_stub() as local:
        yield {"external": external, "local": local}


@pytest.fixture(scope="module")
def services(settings, tracker, logs_dir, tmp_path_factory, llms):
    state = tmp_path_factory.mktemp("service-apis")
    rag = start_service(
        "lorag_rag", logs_dir, LORAG_CHROMA_PATH=str(state / "chroma"),
        LORAG_LLM_BASE_URL=llms["external"][0], LORAG_LLM_MODEL="stub-external",
        LORAG_LORA_OPENAI_URL=llms["local"][0],
    )  # fmt: skip
    hybrid = start_service(
        "lorag_hybrid", logs_dir, LORAG_RAG_SERVICE_URL=rag.url, LORAG_HYBRID_WARM_UP="false",
        LORAG_LORA_OPENAI_URL=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
    )  # fmt: skip
    yield {"rag": rag, "hybrid": hybrid}
    hybrid.stop()
    rag.stop()


@pytest.fixture
async def rag(settings, services):
    async with RagClient(services["rag"].url, settings.service_secret, timeout=60) as client:
        yield client


@pytest.fixture
async def hybrid(settings, services):
    async with HybridClient(services["hybrid"].url, settings.service_secret, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
async def kb(settings, services) -> str:
    """A knowledge base of ALICE's, built by a real EXTERNAL_RAG job."""
    name = f"facts-{RUN}"
    objects = ObjectStore.from_settings(settings.s3)
    for source, text in FACTS.items():
        objects.put_bytes("lorag-datasets", f"apis-{RUN}/{source}", text.encode())
    job_id = f"job-apis-{RUN}"
    event = JobRequested(
        job_id=job_id, training_type="EXTERNAL_RAG", owner=ALICE,
        datasets=(DatasetRef(uri=f"s3://lorag-datasets/apis-{RUN}/"),),
        parameters=RagParameters(kb=name, chunk_tokens=64, chunk_overlap=8),
    )  # fmt: skip
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=180)
    return name


async def ingest(settings, kb: str, owner: str, files: dict[str, str], job_id: str) -> None:
    """Run an EXTERNAL_RAG job of `files` into `kb` to SUCCEEDED."""
    objects = ObjectStore.from_settings(settings.s3)
    prefix = f"apis-{job_id}"
    for source, text in files.items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{source}", text.encode())
    event = JobRequested(
        job_id=job_id, training_type="EXTERNAL_RAG", owner=owner,
        datasets=(DatasetRef(uri=f"s3://lorag-datasets/{prefix}/"),),
        parameters=RagParameters(kb=kb, chunk_tokens=64, chunk_overlap=8),
    )  # fmt: skip
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=job_id.encode()
    )
    await wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=180)


async def test_a_new_version_is_seen_at_once_and_a_drop_elsewhere_once_noticed(settings, rag):
    """The service caches live KBs' rows (lorag_rag.kb_rows). Its own commit of a version is
    seen by the next query. A row deleted by someone else (here plain SQL) is seen as gone once
    Postgres's notice reaches the service: milliseconds, but after the deleting COMMIT returns,
    so the next call may still find it (a CI run did)."""
    name = f"cached-{RUN}"
    await ingest(settings, name, ALICE, {"site.md": "The site is called harbor."}, f"c1-{RUN}")
    first = await rag.query(ALICE, name, Query(question="What is the site called?", top_k=1))
    assert "harbor" in first.hits[0].text and (await rag.show_kb(ALICE, name)).version == 1

    await ingest(settings, name, ALICE, {"site.md": "The site is called meadow."}, f"c2-{RUN}")
    assert (await rag.show_kb(ALICE, name)).version == 2
    again = await rag.query(ALICE, name, Query(question="What is the site called?", top_k=1))
    assert "meadow" in again.hits[0].text

    async with await psycopg.AsyncConnection.connect(settings.postgres_dsn) as conn:
        await conn.execute("DELETE FROM rag_knowledge_bases WHERE name = %s", (name,))
        await conn.commit()
    deleted = time.monotonic()
    while time.monotonic() - deleted < NOTICE_WITHIN_S:
        try:
            await rag.show_kb(ALICE, name)
        except NotFound:
            break
        await asyncio.sleep(0.01)
    assert time.monotonic() - deleted < NOTICE_WITHIN_S, "the drop was never noticed"
    with pytest.raises(NotFound):
        await rag.show_kb(ALICE, name)
    with pytest.raises(NotFound):
        await rag.query(ALICE, name, Query(question="What is the site called?"))


async def test_a_kb_built_by_a_job_is_listed_shown_and_queried(rag, kb):
    listed = {k.name: k for k in await rag.list_kbs(ALICE)}
    assert kb in listed and listed[kb].owner == ALICE and listed[kb].chunk_count >= 3
    shown = await rag.show_kb(ALICE, kb)
    assert shown.version == 1 and shown.source_count == 3
    assert shown.embedding_model.lower().endswith("all-minilm-l6-v2")

    found = await rag.query(ALICE, kb, Query(question=QUESTION, top_k=2))
    assert [h.rank for h in found.hits] == [1, 2]
    top = found.hits[0]
    assert top.source == "infra.md" and "lighthouse" in top.text and 0 < top.score <= 1
    assert top.position is not None and top.id

    only_pets = await rag.query(ALICE, kb, Query(question=QUESTION, where={"source": "pets.md"}))
    assert only_pets.hits and {h.source for h in only_pets.hits} == {"pets.md"}


async def test_answers_cite_the_context_with_the_external_or_the_local_llm(rag, kb, llms):
    external, local = llms["external"][1], llms["local"][1]
    answer = await rag.answer(ALICE, kb, AnswerRequest(question=QUESTION, top_k=2))
    assert answer.model == "stub-external" and "STUB ANSWER [1]" in answer.answer
    assert [c.n for c in answer.citations] == [1, 2]
    assert answer.citations[0].source == "infra.md" and "lighthouse" in answer.citations[0].text
    sent = external[-1]
    assert sent["model"] == "stub-external" and sent["max_tokens"] == 128
    assert "[1] (infra.md" in sent["messages"][-1]["content"]

    asked = AnswerRequest(question=QUESTION, llm="local", model="ada:3", max_tokens=32)
    answer = await rag.answer(ALICE, kb, asked)
    assert answer.model == "ada:3" and "lighthouse" in answer.answer  # the stub echoes context
    sent = local[-1]
    assert sent["model"] == "ada:3" and sent["max_tokens"] == 32
    assert sent["x_lorag_owner"] == ALICE  # so the lora-service can refuse others' adapters
    base = await rag.answer(ALICE, kb, AnswerRequest(question=QUESTION, llm="local"))
    assert base.model == "base" and local[-1]["model"] == "base"


async def test_extractive_answers_quote_the_best_sentence_and_cite_it(rag, kb):
    answer = await rag.extract(ALICE, kb, ExtractRequest(question=QUESTION, top_k=3))
    assert answer.answer.startswith("The production cluster is called lighthouse.")
    n = int(answer.answer.rsplit("[", 1)[1].rstrip("]"))
    assert "lighthouse" in answer.citations[n - 1].text and answer.citations[n - 1].source
    assert answer.model == "extractive:all-MiniLM-L6-v2" and 0.5 < (answer.confidence or 0) <= 1
    pets = await rag.extract(ALICE, kb, ExtractRequest(question="What is the cat called?"))
    assert "Pixel" in pets.answer and "lighthouse" not in pets.answer
    found = await rag.embed(ALICE, kb, [QUESTION, "What is the cat called?"])
    assert found.model == "all-MiniLM-L6-v2" and [len(v) for v in found.vectors] == [384, 384]
    assert abs(sum(x * x for x in found.vectors[0]) - 1) < 1e-3  # unit length


async def test_another_owners_kb_is_not_found_exactly_like_an_unknown_one(rag, kb):
    assert kb not in {k.name for k in await rag.list_kbs(BOB)}
    calls = {
        "show": lambda owner, name: rag.show_kb(owner, name),
        "query": lambda owner, name: rag.query(owner, name, Query(question=QUESTION)),
        "answer": lambda owner, name: rag.answer(owner, name, AnswerRequest(question=QUESTION)),
        "extract": lambda owner, name: rag.extract(owner, name, ExtractRequest(question=QUESTION)),
        "embed": lambda owner, name: rag.embed(owner, name, [QUESTION]),
    }
    for call in calls.values():
        with pytest.raises(NotFound) as others:
            await call(BOB, kb)
        with pytest.raises(NotFound) as unknown:
            await call(ALICE, f"no-such-kb-{RUN}")
        assert others.value.message == f"no knowledge base {kb!r}"
        assert unknown.value.message == f"no knowledge base 'no-such-kb-{RUN}'"
        for error in (others.value, unknown.value):
            assert error.status == 404 and error.code == "KB_NOT_FOUND"
            assert error.hint and "lorag kb ls" in error.hint


async def test_the_apis_refuse_callers_without_the_service_token(services, kb):
    owner = {"X-Lorag-Owner": ALICE}
    async with httpx.AsyncClient(timeout=30) as http:
        for base, path in (
            (services["rag"].url, "/v1/kbs"),
            (services["hybrid"].url, "/v1/minions"),
        ):
            bare = await http.get(f"{base}{path}", headers=owner)
            wrong = await http.get(f"{base}{path}", headers={**owner, "Authorization": "Bearer x"})
            assert bare.status_code == wrong.status_code == 401
            assert "LORAG_SERVICE_TOKEN" in bare.json()["detail"]
            assert (await http.get(f"{base}/health")).status_code == 200  # stays open
        query = await http.post(f"{services['rag'].url}/v1/kbs/{kb}/query",
                                json={"question": QUESTION}, headers=owner)  # fmt: skip
        assert query.status_code == 401


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("query", {"top_k": 3}, "question"),
        ("query", {"question": QUESTION, "top_k": 0}, "top_k"),
        ("query", {"question": "   "}, "question"),
        ("query", {"question": QUESTION, "k": 3}, "k"),
        ("answer", {"question": QUESTION, "model": "ada:1"}, "request"),
        ("answer", {"question": QUESTION, "llm": "elsewhere"}, "llm"),
    ],
)
async def test_malformed_requests_are_422_saying_which_field(settings, services, kb, path, body,
                                                             field):  # fmt: skip
    headers = {"Authorization": f"Bearer {settings.service_secret}", "X-Lorag-Owner": ALICE}
    async with httpx.AsyncClient(base_url=services["rag"].url, timeout=60) as http:
        response = await http.post(f"/v1/kbs/{kb}/{path}", json=body, headers=headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["loc"][1:] or ["request"])[0] == field


async def test_a_bad_filter_or_owner_is_422_through_the_client(settings, services, rag, kb):
    with pytest.raises(Invalid) as bad_filter:
        await rag.query(ALICE, kb, Query(question=QUESTION, where={"source": {"$like": "x"}}))
    assert bad_filter.value.status == 422 and bad_filter.value.code == "INVALID_FILTER"
    # what the client's own models would refuse, sent anyway: the service refuses it too
    with pytest.raises(Invalid) as blank:
        await rag.query(ALICE, kb, Query.model_construct(question="", top_k=5))
    assert blank.value.errors[0]["loc"] == ["body", "question"]
    with pytest.raises(Invalid):
        await rag.list_kbs("not an owner!")


@pytest.fixture(scope="module")
async def minion(settings, kb) -> str:
    """A minion of ALICE's over the job's KB, as a hybrid saga files it (its adapter's name
    goes to the local LLM stub, which answers for any model)."""
    name = f"ada-{RUN}"
    row = {
        "name": name, "owner": ALICE, "job_id": f"job-hybrid-{RUN}",
        "training_type": "LOCAL_HYBRID", "kb": kb, "adapter": f"{name}:1", "llm": {"rag": "base"},
        "scores": {"rag": 0.5, "lora": 0.1, "lora+rag": 0.4}, "best_variant": "rag",
    }  # fmt: skip
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        await minions.save_minion(conn, row)
    return name


async def test_minions_are_listed_shown_and_asked_by_their_owner_only(hybrid, minion, kb, llms):
    assert [m.name for m in await hybrid.list_minions(ALICE)] == [minion]
    assert await hybrid.list_minions(BOB) == []
    shown = await hybrid.show_minion(ALICE, minion)
    assert shown.kb == kb and shown.best_variant == "rag" and shown.scores["rag"] == 0.5

    answer = await hybrid.ask(ALICE, minion, Ask(question=QUESTION))
    [reply] = answer.replies
    assert reply.variant == "rag" and reply.error is None and "lighthouse" in (reply.answer or "")
    # no evaluated questions filed with this minion: its overall scores route
    assert answer.routing and answer.routing.variant == "rag"
    assert answer.routing.basis == "overall scores" and answer.routing.scores["rag"] == 0.5
    assert reply.sources[0].source == "infra.md" and "lighthouse" in reply.sources[0].text
    sent = llms["local"][1][-1]  # LOCAL_HYBRID: rag answers with the local base model
    assert sent["model"] == "base" and sent["x_lorag_owner"] == ALICE

    for call in (
        lambda: hybrid.show_minion(BOB, minion),
        lambda: hybrid.ask(BOB, minion, Ask(question=QUESTION)),
        lambda: hybrid.show_minion(ALICE, f"nobody-{RUN}"),
    ):
        with pytest.raises(NotFound) as missing:
            await call()
        assert missing.value.code == "MINION_NOT_FOUND" and "lorag minions" in missing.value.hint


async def test_a_failing_variant_is_reported_beside_the_ones_that_answer(hybrid, minion, llms):
    answer = await hybrid.ask(ALICE, minion, Ask(question=QUESTION, compare=True))
    replies = {r.variant: r for r in answer.replies}
    assert list(replies) == ["extractive", "rag", "lora+rag", "lora"]
    assert replies["rag"].answer and replies["lora+rag"].answer
    assert "lighthouse" in (replies["extractive"].answer or "")
    assert replies["lora+rag"].sources and llms["local"][1][-1]["model"] in {"base", minion + ":1"}
    lora = replies["lora"]
    assert lora.answer is None and lora.error and "Unavailable" in lora.error  # nothing listens
    assert answer.scores == {"rag": 0.5, "lora": 0.1, "lora+rag": 0.4}


async def test_an_unknown_variant_is_422(settings, services, minion):
    headers = {"Authorization": f"Bearer {settings.service_secret}", "X-Lorag-Owner": ALICE}
    async with httpx.AsyncClient(base_url=services["hybrid"].url, timeout=60) as http:
        response = await http.post(
            f"/v1/minions/{minion}/ask", json={"question": QUESTION, "variant": "gpt"},
            headers=headers,
        )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "variant"]
