"""The gateway's HTTP API against the real servers: tokens, uploads, bad input, owner isolation,
paging, cancelling, and the adapters and knowledge bases that real rag- and lora-service jobs made.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.request
import uuid
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_core.contracts import DatasetRef, JobRequested, LoraParameters
from lorag_core.db import tokens
from lorag_local.stack import free_port
from tests.integration.test_lora_helpers import (  # noqa: F401 (tiny_models is a fixture)
    jsonl,
    lora_env,
    pairs,
    start_lora,
    tiny_models,
)
from tests.support.db import wait_for_job
from tests.support.gateway import service_urls, start_gateway
from tests.support.kafka import publish_raw
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.integration
QA = b'{"question": "What is the cluster called?", "answer": "lighthouse"}\n' * 20
UPLOAD_LIMIT = 64 * 1024
LORA_FAST = {"max_steps": 6, "batch_size": 4, "max_seq_len": 64, "lr": 0.01, "seed": 3}
RAG_FAST = {"chunk_tokens": 64, "chunk_overlap": 8}
FACT = "The backup generator in hall nine is codenamed quiet-otter-42."


def wait_for_api(base: str, service: ServiceProcess, timeout: float = 30) -> None:
    """The API starts after the broker connected, a moment after /ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/openapi.json", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"gateway API not up at {base}:\n{service.log()}")


async def make_token(settings, owner: str) -> str:
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        return str((await tokens.create(conn, owner, "test"))["token"])


@pytest.fixture(scope="module")
def gateway(settings, logs_dir, rag, lora, hybrid):
    """The gateway in front of real rag-, lora-service and orchestrator processes."""
    running = start_gateway(
        logs_dir, rag, lora, hybrid, LORAG_GATEWAY_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT)
    )
    yield running.url
    assert running.process.stop() == 0, running.process.log()


@pytest.fixture(scope="module")
def rag(settings, logs_dir, tmp_path_factory):
    """The rag-service, for the EXTERNAL_RAG jobs the gateway accepts; it alone reads Chroma."""
    chroma = str(tmp_path_factory.mktemp("gateway-chroma"))
    service = start_service("lorag_rag", logs_dir, LORAG_CHROMA_PATH=chroma, HF_HUB_OFFLINE="1")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def hybrid(settings, logs_dir, rag, lora):
    """The orchestrator: minions and recommendations, asking the rag- and lora-service."""
    service = start_service("lorag_hybrid", logs_dir, HF_HUB_OFFLINE="1", **service_urls(rag, lora))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def lora(settings, logs_dir, tiny_models, tmp_path_factory):  # noqa: F811
    """The lora-service with the tiny local base model, for LOCAL_LORA jobs."""
    work = tmp_path_factory.mktemp("gateway-lora")
    service = start_lora(logs_dir, lora_env(tiny_models, work, free_port()))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def owners(settings):
    return {o: asyncio.run(make_token(settings, o)) for o in ("alice", "bob")}


def client(base: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=60)


def upload(c: httpx.Client, files: dict[str, bytes]) -> str:
    """Upload files as one dataset; its s3:// URI."""
    r = c.post("/api/datasets", files=[("files", (n, data)) for n, data in files.items()])
    assert r.status_code == 201, r.text
    return str(r.json()["uri"])


def submit(c: httpx.Client, training_type: str, uri: str, **parameters: Any) -> str:
    body = {"training_type": training_type, "datasets": [uri], "parameters": parameters or None}
    r = c.post("/api/jobs", json=body)
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def wait(settings, job_id: str, state: str | None = None, timeout: float = 30) -> dict[str, Any]:
    """The job once the tracker recorded it (in `state`, if given)."""
    return asyncio.run(wait_for_job(settings.postgres_dsn, job_id, state=state, timeout=timeout))


def new_owner(settings, gateway: str, prefix: str) -> httpx.Client:
    """A client of an owner no other test uses, so its listings hold only this test's things."""
    return client(gateway, asyncio.run(make_token(settings, f"{prefix}-{uuid.uuid4().hex[:8]}")))


def test_no_or_a_wrong_token_is_401(gateway):
    for c in (client(gateway), client(gateway, "lrg_not-a-token")):
        for method, path in (("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/me")):
            r = c.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"


def test_an_owner_over_the_rate_limit_gets_429_and_others_do_not(settings, logs_dir, owners):
    port = free_port()
    limited = start_service(
        "lorag_gateway", logs_dir, LORAG_GATEWAY_PORT=str(port),
        LORAG_GATEWAY_RATE_LIMIT_PER_S="0.5", LORAG_GATEWAY_RATE_LIMIT_BURST="3",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_api(base, limited)
        alice, bob = client(base, owners["alice"]), client(base, owners["bob"])
        assert [alice.get("/api/me").status_code for _ in range(3)] == [200, 200, 200]
        over = alice.get("/api/jobs")
        assert over.status_code == 429, over.text
        assert int(over.headers["retry-after"]) >= 1 and "retry in" in over.json()["detail"]
        assert bob.get("/api/me").status_code == 200  # a bucket per owner
    finally:
        assert limited.stop() == 0, limited.log()


def test_a_revoked_token_is_401(settings, gateway):
    async def revoked() -> str:
        async with await psycopg.AsyncConnection.connect(
            settings.postgres_dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            row = await tokens.create(conn, "carol")
            assert await tokens.revoke(conn, row["token_id"])
            stored = await (await conn.execute(
                "SELECT token_sha256 FROM gateway_tokens WHERE token_id = %s", (row["token_id"],)
            )).fetchone()  # fmt: skip
            assert stored["token_sha256"] == tokens.digest(row["token"]) != row["token"]
            return str(row["token"])

    assert client(gateway, asyncio.run(revoked())).get("/api/me").status_code == 401


def test_upload_recommend_submit_and_only_the_owner_sees_the_job(gateway, owners):
    alice, bob = client(gateway, owners["alice"]), client(gateway, owners["bob"])
    assert alice.get("/api/me").json() == {"owner": "alice"}
    sneaky = alice.post("/api/datasets", files={"files": ("../../../etc/qa.jsonl", QA)})
    assert sneaky.status_code == 422, sneaky.text  # traversal is refused, not cleaned
    assert sneaky.json()["detail"][0]["type"] == "UPLOAD_NAME_UNSAFE"
    up = alice.post("/api/datasets", files={"files": ("corpus/qa.jsonl", QA)})
    assert up.status_code == 201, up.text
    uri = up.json()["uri"]
    assert uri.startswith("s3://lorag-datasets/uploads/alice/") and ".." not in uri
    assert up.json()["files"][0]["name"] == "qa.jsonl"  # folders flattened to the base name

    rec = alice.post("/api/recommend", json={"dataset": uri})
    assert rec.status_code == 200, rec.text
    first = rec.json()["recommendations"][0]
    assert {"peak_memory_gb", "seconds", "cost_usd", "reasons"} <= first.keys()

    job = alice.post("/api/jobs", json={"training_type": "EXTERNAL_RAG", "datasets": [uri]})
    assert job.status_code == 202, job.text
    job_id = job.json()["job_id"]
    deadline = time.monotonic() + 30
    while alice.get(f"/api/jobs/{job_id}").status_code != 200:
        assert time.monotonic() < deadline, "the tracker never recorded the job"
        time.sleep(0.2)
    assert any(j["job_id"] == job_id for j in alice.get("/api/jobs").json())
    assert all(j["job_id"] != job_id for j in bob.get("/api/jobs").json())
    assert bob.get(f"/api/jobs/{job_id}").status_code == 404
    assert bob.post(f"/api/jobs/{job_id}/cancel").status_code == 404
    assert bob.get(f"/api/jobs/{job_id}/events").status_code == 404
    # bob may not point a job or a recommendation at alice's upload either
    stolen = bob.post("/api/jobs", json={"training_type": "EXTERNAL_RAG", "datasets": [uri]})
    assert stolen.status_code == 422 and stolen.json()["detail"][0]["loc"] == [
        "body",
        "datasets",
        0,
    ]
    assert bob.post("/api/recommend", json={"dataset": uri}).status_code == 422


def test_bad_input_gets_a_clear_status(gateway, owners):
    alice = client(gateway, owners["alice"])
    big = alice.post("/api/datasets", files={"files": ("big.jsonl", b"x" * (UPLOAD_LIMIT * 3))})
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    near = alice.post("/api/datasets", files={"files": ("big.jsonl", b"x" * (UPLOAD_LIMIT + 10))})
    assert near.status_code == 413, near.text  # under the body slack, caught per file
    exe = alice.post("/api/datasets", files={"files": ("tool.exe", b"MZ")})
    assert exe.status_code == 415 and ".exe" in exe.json()["detail"]
    dots = alice.post("/api/datasets", files={"files": ("..", b"x")})
    assert dots.status_code == 422

    mine = upload(alice, {"qa.jsonl": QA})
    bad = alice.post("/api/jobs", json={
        "training_type": "EXTERNAL_RAG", "datasets": [mine],
        "parameters": {"chunk_tokens": 2, "nope": 1},
    })  # fmt: skip
    assert bad.status_code == 422
    locs = {tuple(e["loc"]) for e in bad.json()["detail"]}
    assert ("body", "parameters", "chunk_tokens") in locs and ("body", "parameters", "nope") in locs
    kind = alice.post("/api/jobs", json={"training_type": "MAGIC", "datasets": ["s3://b/k"]})
    assert kind.status_code == 422 and kind.json()["detail"][0]["loc"] == ["body", "training_type"]
    up = alice.post(
        "/api/jobs", json={"training_type": "EXTERNAL_RAG", "datasets": ["s3://b/../x"]}
    )
    assert up.status_code == 422
    none = alice.post("/api/jobs", json={"training_type": "EXTERNAL_RAG", "datasets": []})
    assert none.status_code == 422
    for elsewhere, code in (("s3://lorag-datasets/x/", "DATASET_NOT_YOURS"),
                            ("s3://lorag-artifacts/uploads/alice/x/", "DATASET_BUCKET_NOT_ALLOWED"),
                            ("https://example.com/qa.jsonl", "DATASET_URI_INVALID")):  # fmt: skip
        r = alice.post("/api/jobs", json={"training_type": "EXTERNAL_RAG", "datasets": [elsewhere]})
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == code, r.text
        assert "upload" in r.json()["detail"][0]["msg"], r.text  # the hint says what to do


def test_openapi_and_docs_are_served(gateway):
    spec = httpx.get(f"{gateway}/api/openapi.json").json()
    assert "/api/jobs/{job_id}/events" in spec["paths"] and "/api/recommend" in spec["paths"]
    assert httpx.get(f"{gateway}/api/docs").status_code == 200
    assert "lorag console" in httpx.get(f"{gateway}/").text


def pages(c: httpx.Client, **filters: Any) -> list[list[str]]:
    """The job ids of every page of GET /api/jobs at two a page, each page asked for with the
    previous page's last id."""
    found: list[list[str]] = []
    while True:
        before = {"before": found[-1][-1]} if found else {}
        r = c.get("/api/jobs", params={"limit": 2, **filters, **before})
        assert r.status_code == 200, r.text
        if not r.json():
            return found
        assert len(r.json()) <= 2
        found.append([j["job_id"] for j in r.json()])


def test_paging_through_jobs_lists_each_once_in_order(settings, gateway, owners, rag):
    pager = new_owner(settings, gateway, "pager")
    uri = upload(pager, {"qa.jsonl": QA})
    submitted = [submit(pager, "EXTERNAL_RAG", uri, **RAG_FAST) for _ in range(5)]
    for job_id in submitted:
        wait(settings, job_id)

    paged = [job_id for page in pages(pager) for job_id in page]
    whole = pager.get("/api/jobs").json()
    assert paged == [j["job_id"] for j in whole]
    assert sorted(paged) == sorted(submitted)  # each exactly once
    keys = [(datetime.fromisoformat(j["created_at"]), j["job_id"]) for j in whole]
    assert all(n[0] > o[0] or (n[0] == o[0] and n[1] < o[1]) for n, o in itertools.pairwise(keys))

    bob = client(gateway, owners["bob"])
    bobs = submit(bob, "EXTERNAL_RAG", upload(bob, {"qa.jsonl": QA}), **RAG_FAST)
    wait(settings, bobs)
    for foreign in (bobs, "job-nobody-has-this", ""):
        r = pager.get("/api/jobs", params={"before": foreign})
        assert r.status_code == 404 and "`before`" in r.json()["detail"], r.text


def test_paging_breaks_ties_on_the_job_id_and_keeps_the_filters(settings, gateway):
    """Jobs created in the same instant come in job-id order, and no page skips or repeats one."""
    owner = f"ties-{uuid.uuid4().hex[:8]}"
    a, b, c, d, e, z = (f"job-{owner}-{x}" for x in "abcdez")
    inserted = {d: "EXTERNAL_RAG", b: "LOCAL_LORA", e: "EXTERNAL_RAG", a: "LOCAL_LORA",
                c: "EXTERNAL_RAG"}  # fmt: skip

    async def insert() -> str:
        async with await psycopg.AsyncConnection.connect(
            settings.postgres_dsn, autocommit=True
        ) as conn:
            await conn.execute(
                "INSERT INTO jobs (job_id, owner, requested_type, effective_type)"
                " SELECT id, %s, t, t FROM unnest(%s::text[], %s::text[]) AS u(id, t)",
                (owner, list(inserted), list(inserted.values())),
            )  # one statement, one now(): the five share their created_at
            await conn.execute(
                "INSERT INTO jobs (job_id, owner, requested_type, effective_type, created_at)"
                " VALUES (%s, %s, 'LOCAL_LORA', 'LOCAL_LORA', now() - interval '1 hour')",
                (z, owner),
            )
        return await make_token(settings, owner)

    me = client(gateway, asyncio.run(insert()))
    assert pages(me) == [[a, b], [c, d], [e, z]]
    assert pages(me, type="LOCAL_LORA") == [[a, b], [z]]
    assert pages(me, type="EXTERNAL_RAG") == [[c, d], [e]]
    # the cursor need not match the filter: after c (a RAG job) the LoRA jobs are z alone
    after_c = me.get("/api/jobs", params={"type": "LOCAL_LORA", "before": c}).json()
    assert [j["job_id"] for j in after_c] == [z]


def test_cancel_through_the_api_ends_the_job_cancelled(settings, gateway, owners, lora):
    alice, bob = client(gateway, owners["alice"]), client(gateway, owners["bob"])
    uri = upload(alice, {"train.jsonl": jsonl(pairs("x", n=16))})
    job_id = submit(alice, "LOCAL_LORA", uri, **{**LORA_FAST, "max_steps": 100_000})
    wait(settings, job_id, "RUNNING", timeout=120)

    assert bob.post(f"/api/jobs/{job_id}/cancel").status_code == 404
    asked = alice.post(f"/api/jobs/{job_id}/cancel")
    assert asked.status_code == 202, asked.text
    assert asked.json() == {"job_id": job_id, "cancel_requested": True, "state": "RUNNING"}
    wait(settings, job_id, "CANCELLED", timeout=30)
    assert alice.get(f"/api/jobs/{job_id}").json()["cancel_reason"] == "cancelled in the console"

    again = alice.post(f"/api/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already ended CANCELLED" in again.json()["detail"]
    assert alice.post("/api/jobs/job-nobody-has-this/cancel").status_code == 404


def test_adapters_are_listed_shown_and_promoted_for_their_owner_only(
    settings, gateway, owners, lora
):
    alice, bob = client(gateway, owners["alice"]), client(gateway, owners["bob"])
    name = f"gw-{uuid.uuid4().hex[:8]}"
    uri = upload(alice, {"train.jsonl": jsonl(pairs("green", n=16))})
    jobs = [submit(alice, "LOCAL_LORA", uri, **LORA_FAST, adapter=name) for _ in range(2)]
    for job_id in jobs:
        wait(settings, job_id, "SUCCEEDED", timeout=180)

    def versions(c: httpx.Client = alice) -> dict[int, list[str]]:
        listed = c.get("/api/adapters")
        assert listed.status_code == 200, listed.text
        return {a["version"]: a["aliases"] for a in listed.json() if a["name"] == name}

    assert versions() == {1: [], 2: ["latest"]}
    shown = alice.get(f"/api/adapters/{name}")
    assert shown.status_code == 200, shown.text
    assert {v["job_id"] for v in shown.json()["versions"]} == set(jobs)
    assert [(h["alias"], h["version"]) for h in shown.json()["history"]] == [
        ("latest", 1),
        ("latest", 2),
    ]

    first = alice.post(f"/api/adapters/{name}/promote", json={"version": 1, "alias": "production"})
    assert first.status_code == 200, first.text
    assert first.json()["previous_version"] is None
    assert versions() == {1: ["production"], 2: ["latest"]}
    moved = alice.post(f"/api/adapters/{name}/promote", json={"version": 2, "alias": "production"})
    assert moved.status_code == 200 and moved.json()["previous_version"] == 1, moved.text
    assert versions() == {1: [], 2: ["latest", "production"]}
    history = alice.get(f"/api/adapters/{name}").json()["history"]
    assert history[-1] | {"promoted_at": None} == {
        "alias": "production", "version": 2, "previous_version": 1,
        "promoted_by": "alice", "promoted_at": None,
    }  # fmt: skip

    missing = alice.post(f"/api/adapters/{name}/promote", json={"version": 9, "alias": "x"})
    assert missing.status_code == 404 and f"{name}:9" in missing.json()["detail"]
    for alias in ("12", "no spaces"):
        bad = alice.post(f"/api/adapters/{name}/promote", json={"version": 1, "alias": alias})
        assert bad.status_code == 422, bad.text
    assert alice.get("/api/adapters/gw-nobody-has-this").status_code == 404

    assert versions(bob) == {}
    assert bob.get(f"/api/adapters/{name}").status_code == 404
    stolen = bob.post(f"/api/adapters/{name}/promote", json={"version": 1, "alias": "production"})
    assert stolen.status_code == 404
    assert versions() == {1: [], 2: ["latest", "production"]}  # bob moved nothing


def test_an_adapter_name_stays_with_its_owner(settings, gateway, owners, lora):
    alice, bob = client(gateway, owners["alice"]), client(gateway, owners["bob"])
    name = f"gw-own-{uuid.uuid4().hex[:8]}"
    uri = upload(alice, {"train.jsonl": jsonl(pairs("blue", n=16))})
    wait(settings, submit(alice, "LOCAL_LORA", uri, **LORA_FAST, adapter=name), "SUCCEEDED", 180)

    bobs_uri = upload(bob, {"train.jsonl": jsonl(pairs("red", n=16))})
    taken = [
        ("LOCAL_LORA", {**LORA_FAST, "adapter": name}, {}, ["parameters", "adapter"]),
        ("LOCAL_HYBRID", {"kind": "hybrid", "minion": name}, {}, ["parameters", "minion"]),
        ("EXTERNAL_HYBRID", {"kind": "hybrid", "lora": {"adapter": name}}, {},
         ["parameters", "lora", "adapter"]),
        ("LOCAL_HYBRID", None, {"minion_id": name}, ["minion_id"]),
    ]  # fmt: skip
    for kind, parameters, extra, loc in taken:
        body = {"training_type": kind, "datasets": [bobs_uri], "parameters": parameters, **extra}
        refused = bob.post("/api/jobs", json=body)
        assert refused.status_code == 422, (kind, refused.text)
        (error,) = refused.json()["detail"]
        assert error["loc"] == ["body", *loc] and "another owner" in error["msg"]
    # its owner adds versions as before
    wait(settings, submit(alice, "LOCAL_LORA", uri, **LORA_FAST, adapter=name), "SUCCEEDED", 180)

    # Straight to Kafka, past the gateway: the lora-service refuses the name before training.
    bobs = JobRequested(
        job_id=f"job-gw-{uuid.uuid4().hex[:10]}", training_type="LOCAL_LORA", owner="bob",
        datasets=(DatasetRef(uri=bobs_uri),), parameters=LoraParameters(**LORA_FAST, adapter=name),
    )  # fmt: skip
    key = bobs.job_id.encode()
    asyncio.run(publish_raw(settings.kafka.bootstrap_servers, bobs.topic, bobs.to_bytes(), key=key))
    failed = wait(settings, bobs.job_id, "FAILED", timeout=180)
    assert failed["error"]["code"] == "ADAPTER_OWNED_BY_OTHER", failed["error"]

    r = alice.get(f"/api/adapters/{name}")
    assert r.status_code == 200, r.text
    assert {v["version"] for v in r.json()["versions"]} == {1, 2}
    history = [(h["alias"], h["version"], h["previous_version"]) for h in r.json()["history"]]
    assert history == [("latest", 1, None), ("latest", 2, 1)]
    assert bob.get(f"/api/adapters/{name}").status_code == 404


def test_knowledge_bases_are_listed_and_queried_by_their_owner_only(settings, gateway, owners, rag):
    alice, bob = client(gateway, owners["alice"]), client(gateway, owners["bob"])
    kb = f"gw-kb-{uuid.uuid4().hex[:8]}"
    notes = "\n\n".join(
        ["# Facilities", FACT, "The canteen opens at eight.", "Visitors sign in at the desk."]
    )
    uri = upload(alice, {"notes.md": notes.encode(), "qa.jsonl": QA})
    job_id = submit(alice, "EXTERNAL_RAG", uri, **RAG_FAST, kb=kb)
    wait(settings, job_id, "SUCCEEDED", timeout=120)

    listed = {k["name"]: k for k in alice.get("/api/kbs").json()}
    assert listed[kb]["version"] == 1 and listed[kb]["job_id"] == job_id
    assert listed[kb]["owner"] == "alice" and listed[kb]["chunk_count"] >= 2
    question = {"question": "What is the backup generator codenamed?", "top_k": 3}
    found = alice.post(f"/api/kbs/{kb}/query", json=question)
    assert found.status_code == 200, found.text
    hits = found.json()["hits"]
    assert 1 <= len(hits) <= 3 and [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert any("quiet-otter-42" in h["text"] for h in hits)  # only the dataset knows it

    assert kb not in {k["name"] for k in bob.get("/api/kbs").json()}
    assert bob.post(f"/api/kbs/{kb}/query", json=question).status_code == 404
    assert alice.post("/api/kbs/gw-kb-nobody-has-this/query", json=question).status_code == 404
    for blank in ("", "   \n"):
        empty = alice.post(f"/api/kbs/{kb}/query", json={"question": blank})
        assert empty.status_code == 422, empty.text
        assert empty.json()["detail"][0]["loc"] == ["body", "question"]
    # The rag-service's answer passes through: 404 with its code and the hint to list them.
    unknown = alice.post("/api/kbs/gw-kb-nobody-has-this/query", json=question).json()
    assert unknown["code"] == "KB_NOT_FOUND" and "lorag kb ls" in unknown["hint"]
    assert bob.get(f"/api/kbs/{kb}").status_code == 404
    assert alice.get(f"/api/kbs/{kb}").json()["name"] == kb


def test_minions_are_shown_and_asked_by_their_owner_only(settings, gateway, owners, hybrid):
    from lorag_hybrid.saga import store as minions

    alice, bob = client(gateway, owners["alice"]), client(gateway, owners["bob"])
    name = f"gw-minion-{uuid.uuid4().hex[:8]}"
    row = {"name": name, "owner": "alice", "job_id": f"job-{name}", "training_type":
           "LOCAL_HYBRID", "kb": f"{name}-kb", "adapter": None, "llm": {}, "scores": {"rag": 0.5},
           "best_variant": "rag"}  # fmt: skip

    async def save() -> None:
        async with await psycopg.AsyncConnection.connect(
            settings.postgres_dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            await minions.save_minion(conn, row)

    asyncio.run(save())
    assert name in {m["name"] for m in alice.get("/api/minions").json()}
    assert name not in {m["name"] for m in bob.get("/api/minions").json()}
    assert alice.get(f"/api/minions/{name}").json()["best_variant"] == "rag"
    for r in (bob.get(f"/api/minions/{name}"),
              bob.post(f"/api/minions/{name}/ask", json={"question": "Who?"})):  # fmt: skip
        assert r.status_code == 404 and r.json()["code"] == "MINION_NOT_FOUND", r.text
    # Its knowledge base was never built: the one variant says why, the request still answers.
    asked = alice.post(f"/api/minions/{name}/ask", json={"question": "Who?"})
    assert asked.status_code == 200, asked.text
    [reply] = asked.json()["replies"]
    assert reply["variant"] == "rag" and "no knowledge base" in reply["error"]
    bad = alice.post(f"/api/minions/{name}/ask", json={"question": "Who?", "variant": "magic"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "variant"]
