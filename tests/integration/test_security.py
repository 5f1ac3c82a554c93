"""Security through real processes: a full run (a LOCAL_HYBRID job through the gateway, the
orchestrator, the rag- and lora-service, then a question to its minion) whose things then serve
an owner-isolation table over every route of the gateway and of every service API; tokens
(last use, expiry, read-only); uploads; and no secret in any service log of the run.

The isolation tables are checked against the OpenAPI documents: a new route fails
`test_every_route_is_in_an_isolation_table` until it is given a row.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_core.db import tokens
from lorag_local.stack import free_port
from tests.integration.test_lora_helpers import lora_env, tiny_models, wait_api  # noqa: F401
from tests.support.db import wait_for_job
from tests.support.gateway import RunningGateway, start_gateway
from tests.support.processes import ServiceProcess, start_service

# The module's stack trains a (tiny) hybrid first: more than one test's usual five minutes.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]
READY_S = 300  # model-loading services on a loaded machine take more than the usual minute
CACHE_S = 3  # the gateway's token cache in this module
OPENAPI = Path(__file__).parents[2] / "libs" / "lorag-api" / "openapi"
FACT = "The staging cluster is called harbor-seventeen."
QA = [
    {"question": "What is the staging cluster called?", "answer": "harbor-seventeen"},
    {"question": "Who rotates on call?", "answer": "the platform team"},
    {"question": "When does the rotation change?", "answer": "every Tuesday"},
]


@dataclass
class Stack:
    gateway: RunningGateway
    services: dict[str, ServiceProcess]  # by OpenAPI document name
    alice: dict[str, str]  # alice's things: upload, job, kb, adapter, minion
    tokens: dict[str, str]


async def db_call(settings, action):
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        return await action(conn)


def token_for(settings, owner: str, **options: Any) -> str:
    row = asyncio.run(db_call(settings, lambda c: tokens.create(c, owner, "test", **options)))
    return str(row["token"])


def client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=180)


@pytest.fixture(scope="module")
def stack(settings, logs_dir, tmp_path_factory, tiny_models):  # noqa: F811
    """Every service, and alice's things made by one real hybrid job through the gateway."""
    state = tmp_path_factory.mktemp("security")
    api_port = free_port()
    lora_vars = lora_env(tiny_models, state / "lora", api_port)
    lora = start_service("lorag_lora", logs_dir, ready_timeout=READY_S, **lora_vars)
    lora.api_port = api_port  # type: ignore[attr-defined]
    wait_api(lora)
    llm = {"LORAG_LORA_OPENAI_URL": f"http://127.0.0.1:{api_port}/v1"}
    rag = start_service(
        "lorag_rag",
        logs_dir,
        ready_timeout=READY_S,
        LORAG_CHROMA_PATH=str(state / "chroma"),
        HF_HUB_OFFLINE="1",
        **llm,
    )
    hybrid = start_service(
        "lorag_hybrid", logs_dir, ready_timeout=READY_S, HF_HUB_OFFLINE="1",
        LORAG_RAG_SERVICE_URL=rag.url, LORAG_LORA_SERVICE_URL=lora.url,
        LORAG_HYBRID_EVAL_PAIRS="3", **llm,
    )  # fmt: skip
    migration = start_service("lorag_migration", logs_dir, ready_timeout=READY_S)
    gateway = start_gateway(
        logs_dir, rag, lora, hybrid, migration, LORAG_GATEWAY_TOKEN_CACHE_S=str(CACHE_S)
    )
    owners = {"alice": token_for(settings, "alice"), "bob": token_for(settings, "bob")}
    alice = client(gateway.url, owners["alice"])
    notes = "\n\n".join([FACT, "The production cluster is called lighthouse."])
    files = [("files", ("qa.jsonl", "\n".join(json.dumps(r) for r in QA).encode())),
             ("files", ("notes.md", notes.encode()))]  # fmt: skip
    up = alice.post("/api/datasets", files=files)
    assert up.status_code == 201, up.text
    minion = f"sec-{uuid.uuid4().hex[:6]}"
    body = {
        "training_type": "LOCAL_HYBRID", "datasets": [up.json()["uri"]], "minion_id": minion,
        "parameters": {"minion": minion, "rag": {"chunk_tokens": 64, "chunk_overlap": 8},
                       "lora": {"max_steps": 6, "batch_size": 4, "max_seq_len": 64}},
    }  # fmt: skip
    accepted = alice.post("/api/jobs", json=body)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    job = asyncio.run(wait_for_job(settings.postgres_dsn, job_id, state="SUCCEEDED", timeout=600))
    shown = alice.get(f"/api/minions/{minion}")
    assert shown.status_code == 200, shown.text
    answered = alice.post(f"/api/minions/{minion}/ask", json={"question": QA[0]["question"]})
    assert answered.status_code == 200, answered.text
    things = {
        "upload": up.json()["uri"], "job": job_id, "minion": minion,
        "kb": shown.json()["kb"].split(":")[0],  # the minion names "adapter:version"
        "adapter": shown.json()["adapter"].split(":")[0],
    }  # fmt: skip
    assert job["owner"] == "alice" and all(things.values()), things
    running = {"rag-service": rag, "lora-service": lora, "hybrid-orchestrator": hybrid,
               "migration-service": migration}  # fmt: skip
    yield Stack(gateway, running, things, owners)
    for service in (gateway.process, migration, hybrid, rag, lora):
        service.stop()


# ---- owner isolation -------------------------------------------------------------------------
# How bob's call about alice's thing must end, per route: "404" (exactly like a missing thing),
# "hidden" (a listing without it), "refused" (422: alice's upload named in bob's body),
# "own" (acts on bob's own things only), "public" (nobody's data).
GATEWAY = {
    ("GET", "/api/me"): ("public", None),
    ("GET", "/api/asyncapi.json"): ("public", None),
    ("GET", "/api/training-types"): ("public", None),
    ("GET", "/api/jobs"): ("hidden", "job"),
    ("POST", "/api/jobs"): ("refused", {"training_type": "EXTERNAL_RAG", "datasets": ["{upload}"]}),
    ("GET", "/api/jobs/{job_id}"): ("404", None),
    ("POST", "/api/jobs/{job_id}/cancel"): ("404", {}),
    ("GET", "/api/jobs/{job_id}/events"): ("404", None),
    ("GET", "/api/datasets"): ("hidden", "upload"),
    ("POST", "/api/datasets"): ("own", None),
    ("POST", "/api/recommend"): ("refused", {"dataset": "{upload}"}),
    ("GET", "/api/adapters"): ("hidden", "adapter"),
    ("GET", "/api/adapters/{name}"): ("404", None),
    ("POST", "/api/adapters/{name}/promote"): ("404", {"version": 1, "alias": "stolen"}),
    ("GET", "/api/kbs"): ("hidden", "kb"),
    ("GET", "/api/kbs/{kb}"): ("404", None),
    ("POST", "/api/kbs/{kb}/query"): ("404", {"question": "what?"}),
    ("GET", "/api/minions"): ("hidden", "minion"),
    ("GET", "/api/minions/{name}"): ("404", None),
    ("POST", "/api/minions/{name}/ask"): ("404", {"question": "what?"}),
}
# Which of alice's things a path parameter names, per route prefix.
PARAM_THING = {"job_id": "job", "kb": "kb", "/api/adapters/": "adapter",
               "/api/minions/": "minion", "/v1/adapters/": "adapter", "/v1/minions/": "minion",
               "/v1/adapter-names/": "adapter"}  # fmt: skip
SERVICES = {
    "rag-service": {
        ("GET", "/v1/kbs"): ("hidden", "kb"),
        ("GET", "/v1/kbs/{kb}"): ("404", None),
        ("POST", "/v1/kbs/{kb}/query"): ("404", {"question": "what?"}),
        ("POST", "/v1/kbs/{kb}/answer"): ("404", {"question": "what?"}),
        ("POST", "/v1/kbs/{kb}/extract"): ("404", {"question": "what?"}),
        ("POST", "/v1/kbs/{kb}/embed"): ("404", {"texts": ["what?"]}),
    },
    "lora-service": {
        ("GET", "/v1/adapters"): ("hidden", "adapter"),
        ("GET", "/v1/adapters/{name}"): ("404", None),
        ("POST", "/v1/adapters/{name}/promote"): ("404", {"version": 1, "alias": "stolen"}),
        ("GET", "/v1/adapter-names/{name}"): ("name-taken", None),
    },
    "hybrid-orchestrator": {
        ("GET", "/v1/minions"): ("hidden", "minion"),
        ("GET", "/v1/minions/{name}"): ("404", None),
        ("POST", "/v1/minions/{name}/ask"): ("404", {"question": "what?"}),
        ("POST", "/v1/recommend"): ("404", {"dataset": "{upload}"}),
    },
}
# Routes that hold nobody's data, or that only lorag's own processes call for an owner they
# already checked (never exposed by the gateway), with why.
NOT_OWNED = {
    "/health": "liveness",
    "/ready": "readiness",
    "/asyncapi.json": "the topic contracts",
    "/v1/resources": "the machine's cores and memory",
    "/v1/conversions": "admin: legacy jobs have no owner (`lorag migrate`)",
    "/v1/conversions/rollback": "admin: legacy jobs have no owner",
    "/v1/conversions/{job_id}": "admin: legacy jobs have no owner",
    "/v1/models": "inference API: adapter names, called by the rag-service and orchestrator "
    "for a minion they resolved for its owner",
    "/v1/chat/completions": "inference API, as /v1/models",
    "/v1/completions": "inference API, as /v1/models",
    "/v1/models/{model}": "inference API, as /v1/models; with a key, another owner's model is 404 "
    "(test_lora_openai.py)",
    "/v1/serving": "admin: what the serving engine runs and holds, for operators",
    # The fine-tuning API's files and jobs are the key owner's: another owner's are 404, shown
    # through the openai client in test_fine_tuning_api.py (the ids exist only after uploads).
    "/v1/files": "fine-tuning API (test_fine_tuning_api.py)",
    "/v1/files/{file_id}": "fine-tuning API (test_fine_tuning_api.py)",
    "/v1/fine_tuning/jobs": "fine-tuning API (test_fine_tuning_api.py)",
    "/v1/fine_tuning/jobs/{ftjob_id}": "fine-tuning API (test_fine_tuning_api.py)",
    "/v1/fine_tuning/jobs/{ftjob_id}/cancel": "fine-tuning API (test_fine_tuning_api.py)",
    "/v1/fine_tuning/jobs/{ftjob_id}/checkpoints": "fine-tuning API (test_fine_tuning_api.py)",
    "/v1/fine_tuning/jobs/{ftjob_id}/events": "fine-tuning API (test_fine_tuning_api.py)",
}


def routes(document: str) -> set[tuple[str, str]]:
    spec = json.loads((OPENAPI / f"{document}.openapi.json").read_text())
    return {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}


def test_every_route_is_in_an_isolation_table():
    assert routes("gateway") == set(GATEWAY), "give each gateway route a row in GATEWAY"
    for document in ("rag-service", "lora-service", "hybrid-orchestrator", "migration-service",
                     "lora-service-openai"):  # fmt: skip
        table = SERVICES.get(document, {})
        untabled = {r for r in routes(document) if r not in table and r[1] not in NOT_OWNED}
        assert not untabled, f"{document}: give {sorted(untabled)} an isolation row"


def fill(template: Any, things: dict[str, str]) -> Any:
    text = json.dumps(template)
    for key, value in things.items():
        text = text.replace("{" + key + "}", value)
    return json.loads(text)


def path_for(path: str, things: dict[str, str]) -> str:
    for param in ("{job_id}", "{kb}", "{name}"):
        if param in path:
            key = param.strip("{}")
            thing = PARAM_THING.get(key) or next(
                v for k, v in PARAM_THING.items() if path.startswith(k)
            )
            path = path.replace(param, things[thing])
    return path


def judge(route: tuple[str, str], expect: str, extra: Any, r: httpx.Response, things) -> None:
    said = f"{route}: {r.status_code} {r.text[:300]}"
    told = r.text.replace(things["upload"], "")  # bob's own words echoed back tell him nothing
    if expect == "404":
        assert r.status_code == 404, said
        assert "alice" not in told, said  # says nothing about whose it is
    elif expect == "hidden":
        assert r.status_code == 200, said
        assert things[extra] not in r.text, said
    elif expect == "refused":
        assert r.status_code == 422, said
        assert "no dataset" in r.text, said
    elif expect == "name-taken":
        assert r.status_code == 200 and r.json()["available"] is False, said
        assert "alice" not in told, said
    elif expect in ("public", "own"):
        assert r.status_code in (200, 201), said
        assert "alice" not in told, said
    else:
        raise AssertionError(f"unknown expectation {expect}")


def test_bob_reaches_none_of_alices_things_through_the_gateway(stack):
    bob, alice = client(stack.gateway.url, stack.tokens["bob"]), stack.tokens["alice"]
    for route, (expect, extra) in GATEWAY.items():
        method, path = route
        url = path_for(path, stack.alice)
        if route == ("POST", "/api/datasets"):
            r = bob.post(url, files={"files": ("mine.md", b"# bob's notes")})
            assert r.json()["uri"].startswith("s3://lorag-datasets/uploads/bob/"), r.text
        else:
            body = fill(extra, stack.alice) if isinstance(extra, dict) else None
            r = bob.request(method, url, json=body)
        judge(route, expect, extra, r, stack.alice)
        if expect == "404" and method == "GET" and not path.endswith("/events"):
            # alice's own call proves the thing exists (an event stream would stay open)
            mine = client(stack.gateway.url, alice).get(url)
            assert mine.status_code == 200, (route, mine.text)


def test_bob_reaches_none_of_alices_things_through_the_service_apis(settings, stack):
    for document, table in SERVICES.items():
        service = stack.services[document]
        base = f"http://127.0.0.1:{service.port}"
        for route, (expect, extra) in table.items():
            method, path = route
            url = base + path_for(path, stack.alice)
            body = fill(extra, stack.alice) if isinstance(extra, dict) else None
            for owner in ("bob", "alice"):
                headers = {"Authorization": f"Bearer {settings.service_secret}",
                           "X-Lorag-Owner": owner}  # fmt: skip
                r = httpx.request(method, url, json=body, headers=headers, timeout=180)
                if owner == "bob":
                    judge((document, *route), expect, extra, r, stack.alice)
                elif expect == "404" and method == "GET":
                    assert r.status_code == 200, (document, route, r.text)


# ---- tokens -----------------------------------------------------------------------------------


def token_row(settings, token: str) -> dict[str, Any]:
    async def read(conn):
        cur = await conn.execute(
            "SELECT * FROM gateway_tokens WHERE token_sha256 = %s", (tokens.digest(token),)
        )
        return await cur.fetchone()

    return asyncio.run(db_call(settings, read))


def test_last_use_is_recorded_at_most_once_per_cache_period(settings, stack):
    token = token_for(settings, "carol")
    assert token_row(settings, token)["last_used_at"] is None
    carol = client(stack.gateway.url, token)
    assert carol.get("/api/me").status_code == 200
    first = token_row(settings, token)["last_used_at"]
    assert first is not None
    started = time.monotonic()
    for _ in range(3):
        assert carol.get("/api/me").status_code == 200
    if time.monotonic() - started < CACHE_S - 0.5:  # still inside the cache period: no write
        assert token_row(settings, token)["last_used_at"] == first
    time.sleep(CACHE_S + 0.2)
    assert carol.get("/api/me").status_code == 200
    assert token_row(settings, token)["last_used_at"] > first


def test_an_expired_token_is_401_saying_so(settings, stack):
    token = token_for(settings, "dave", expires_in=timedelta(seconds=4))
    dave = client(stack.gateway.url, token)
    assert dave.get("/api/me").status_code == 200
    time.sleep(4.5)  # past its expiry: the cache keeps a grant no longer than that
    r = dave.get("/api/me")
    assert r.status_code == 401 and "expired" in r.json()["detail"], r.text
    assert "lorag tokens create" in r.json()["detail"]


def test_a_read_only_token_reads_and_is_refused_writes_with_403(settings, stack):
    reader = client(stack.gateway.url, token_for(settings, "alice", read_only=True))
    assert reader.get("/api/jobs").status_code == 200
    assert reader.get(f"/api/kbs/{stack.alice['kb']}").status_code == 200
    asked = reader.post(f"/api/kbs/{stack.alice['kb']}/query", json={"question": "cluster?"})
    assert asked.status_code == 200, asked.text  # querying only reads
    writes = {
        "/api/jobs": {
            "json": {"training_type": "EXTERNAL_RAG", "datasets": [stack.alice["upload"]]}
        },
        f"/api/jobs/{stack.alice['job']}/cancel": {"json": {}},
        "/api/datasets": {"files": {"files": ("a.md", b"x")}},
        f"/api/adapters/{stack.alice['adapter']}/promote": {"json": {"version": 1, "alias": "x"}},
    }
    for path, kwargs in writes.items():
        r = reader.post(path, **kwargs)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["code"] == "READ_ONLY_TOKEN" and "--read-only" in r.json()["hint"]


def test_tokens_cli_creates_expiring_read_only_tokens(settings, stack):
    made = stack.gateway.cli("tokens", "create", "erin", "--expires-in", "30d", "--read-only",
                             "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    row = json.loads(made.stdout)
    assert row["read_only"] is True and row["expires_at"]
    bad = stack.gateway.cli("tokens", "create", "erin", "--expires-in", "soon")
    assert bad.returncode != 0 and "30d" in bad.stderr
    listed = stack.gateway.cli("tokens", "ls", "--json")
    mine = [t for t in json.loads(listed.stdout) if t["token_id"] == row["token_id"]]
    assert mine and "token" not in mine[0] and mine[0]["read_only"] is True


# ---- uploads through the API ------------------------------------------------------------------


def test_uploads_refuse_traversal_archives_and_bombs(stack):
    alice = client(stack.gateway.url, stack.tokens["alice"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.jsonl", b"\0" * 30_000_000)
    cases = {
        "traversal": ([("ok.md", b"# ok"), ("../../bob/evil.md", b"x")], 422, "UPLOAD_NAME_UNSAFE"),
        "bomb": ([("ok.md", b"# ok"), ("data.jsonl", buffer.getvalue())], 415, "UPLOAD_ARCHIVE"),
        "zip": ([("data.zip", buffer.getvalue())], 415, "UPLOAD_TYPE"),
        "twice": ([("a/x.md", b"1"), ("b/x.md", b"2")], 422, "UPLOAD_DUPLICATE_NAME"),
    }
    before = alice.get("/api/datasets").json()
    for case, (files, status, code) in cases.items():
        r = alice.post("/api/datasets", files=[("files", f) for f in files])
        assert r.status_code == status, (case, r.text)
        found = r.json().get("code") or r.json()["detail"][0]["type"]
        assert found == code, (case, r.text)
    assert alice.get("/api/datasets").json() == before  # nothing of a refused batch is stored


# ---- secrets ---------------------------------------------------------------------------------


def test_no_secret_appears_in_any_service_log(settings, stack, logs_dir):
    """Last in the module: every service above ran a job, answered, refused and failed."""
    password = psycopg.conninfo.conninfo_to_dict(settings.postgres_dsn)["password"]
    secrets = {
        "S3 secret key": settings.s3.secret_key.get_secret_value(),
        "Postgres DSN": settings.postgres_dsn,
        # The local stack's password is "lorag", the project's name: searched for as a DSN
        # would carry it (deployments set a real one, which must not appear at all).
        "Postgres password": f":{password}@" if len(password) < 8 else password,
        "service token": settings.service_secret,
        **{f"{o}'s token": t for o, t in stack.tokens.items()},
    }
    assert all(v and len(v) >= 7 for v in secrets.values()), "a secret too short to search for"
    logs = sorted(logs_dir.glob("*.log"))
    names = {p.name.split("-")[0] for p in logs}
    assert {"lorag_gateway", "lorag_rag", "lorag_lora", "lorag_hybrid", "lorag_migration"} <= names
    for path in logs:
        text = path.read_text(errors="replace")
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} is in {path.name}"
