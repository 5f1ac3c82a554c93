"""The gateway's HTTP API against the real servers: tokens, uploads, bad input, owner isolation."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_gateway import tokens
from lorag_local.stack import free_port
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.integration
QA = b'{"question": "What is the cluster called?", "answer": "lighthouse"}\n' * 20
UPLOAD_LIMIT = 64 * 1024


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
def gateway(settings, logs_dir):
    port = free_port()
    service = start_service(
        "lorag_gateway", logs_dir, LORAG_GATEWAY_PORT=str(port),
        LORAG_GATEWAY_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_for_api(base, service)
    yield base
    assert service.stop() == 0, service.log()


@pytest.fixture(scope="module")
def owners(settings):
    return {o: asyncio.run(make_token(settings, o)) for o in ("alice", "bob")}


def client(base: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


def test_no_or_a_wrong_token_is_401(gateway):
    for c in (client(gateway), client(gateway, "lrg_not-a-token")):
        for method, path in (("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/me")):
            r = c.request(method, path, json={})
            assert r.status_code == 401, (method, path, r.text)
            assert r.headers["www-authenticate"] == "Bearer"


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
    up = alice.post("/api/datasets", files={"files": ("../../../etc/qa.jsonl", QA)})
    assert up.status_code == 201, up.text
    uri = up.json()["uri"]
    assert uri.startswith("s3://lorag-datasets/uploads/alice/") and ".." not in uri
    assert up.json()["files"][0]["name"] == "qa.jsonl"  # traversal stripped to the base name

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

    bad = alice.post("/api/jobs", json={
        "training_type": "EXTERNAL_RAG", "datasets": ["s3://lorag-datasets/x/"],
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


def test_openapi_and_docs_are_served(gateway):
    spec = httpx.get(f"{gateway}/api/openapi.json").json()
    assert "/api/jobs/{job_id}/events" in spec["paths"] and "/api/recommend" in spec["paths"]
    assert httpx.get(f"{gateway}/api/docs").status_code == 200
    assert "lorag console" in httpx.get(f"{gateway}/").text
