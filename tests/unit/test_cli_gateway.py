"""The CLI's gateway client (standard library only) against a real HTTP server: JSON both ways,
multipart uploads as FastAPI parses them, errors with their code and hint, a server that is
down."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import typer
import uvicorn
from fastapi import FastAPI, Header, HTTPException, UploadFile
from fastapi.responses import JSONResponse

from lorag_api.errors import NotFound, RateLimited, Unauthorized
from lorag_cli.gateway import Gateway
from lorag_local.stack import free_port


def app() -> FastAPI:
    api = FastAPI()

    @api.get("/api/me")
    async def me(authorization: str = Header("")) -> dict[str, str]:
        if authorization != "Bearer good":
            raise HTTPException(401, "invalid or revoked token")
        return {"owner": "alice"}

    @api.get("/api/echo")
    async def echo(limit: int, state: str | None = None) -> dict[str, object]:
        return {"limit": limit, "state": state}

    @api.post("/api/echo")
    async def echo_body(body: dict[str, object]) -> dict[str, object]:
        return body

    @api.post("/api/datasets", status_code=201)
    async def upload(files: list[UploadFile]) -> dict[str, object]:
        return {"files": [{"name": f.filename, "data": (await f.read()).decode()} for f in files]}

    @api.get("/api/kbs/{kb}")
    async def missing(kb: str) -> JSONResponse:
        return JSONResponse({"detail": f"no knowledge base {kb!r}", "code": "KB_NOT_FOUND",
                             "hint": "`lorag kb ls` lists them"}, status_code=404)  # fmt: skip

    @api.get("/api/busy")
    async def busy() -> JSONResponse:
        return JSONResponse({"detail": "too many"}, status_code=429, headers={"Retry-After": "3"})

    return api


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app(), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def test_json_both_ways(url):
    gateway = Gateway(url, "good")
    assert gateway.get("/api/me") == {"owner": "alice"}
    assert gateway.get("/api/echo", limit=5, state=None) == {"limit": 5, "state": None}
    assert gateway.post("/api/echo", {"question": "Wer? ünïcode"}) == {"question": "Wer? ünïcode"}


def test_uploads_are_multipart_as_the_gateway_parses_them(url, tmp_path):
    (tmp_path / "a.md").write_text("# A\nalpha")
    (tmp_path / 'q"uote.txt').write_text("beta")
    sent = Gateway(url, "good").upload([tmp_path / "a.md", tmp_path / 'q"uote.txt'])
    assert sent["files"] == [{"name": "a.md", "data": "# A\nalpha"},
                             {"name": "q_uote.txt", "data": "beta"}]  # fmt: skip


def test_errors_keep_their_status_code_and_hint(url):
    with pytest.raises(Unauthorized):
        Gateway(url, "bad").get("/api/me")
    with pytest.raises(NotFound) as missing:
        Gateway(url, "good").get("/api/kbs/x")
    assert missing.value.code == "KB_NOT_FOUND" and "lorag kb ls" in (missing.value.hint or "")
    with pytest.raises(RateLimited) as busy:
        Gateway(url, "good").get("/api/busy")
    assert busy.value.retry_after == 3


def test_a_gateway_that_is_down_says_how_to_start_it(capsys):
    with pytest.raises(typer.Exit):
        Gateway(f"http://127.0.0.1:{free_port()}", "good").get("/api/me")
    said = " ".join(capsys.readouterr().err.split())
    assert "cannot reach the gateway" in said and "lorag serve gateway" in said
