"""How user commands reach lorag: the gateway's API with a token, and errors that say what to do.

Where: `LORAG_URL`, else `lorag login`'s saved URL, else http://127.0.0.1:8000. Who: `LORAG_TOKEN`,
else the saved token. In the local profile, talking to a gateway on this machine with no token
yet, a token for `LORAG_OWNER` (default `default`) is made on first use and saved, so `make demo`
stays one command; anywhere else a missing token is an error that says how to get one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote, urlparse

import httpx

from lorag_api.errors import ServiceError, Unauthorized, from_response
from lorag_cli.output import fail

LOCAL_URL = "http://127.0.0.1:8000"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_HINT = (
    "run `lorag login --token TOKEN` with a token from `lorag tokens create OWNER` "
    "(an admin command), or set LORAG_TOKEN"
)


def config_path() -> Path:
    """The user's lorag config: $XDG_CONFIG_HOME/lorag/config.json (~/.config by default)."""
    root = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(root) / "lorag" / "config.json"


def load_config() -> dict[str, str]:
    try:
        return dict(json.loads(config_path().read_text()))
    except (OSError, ValueError):
        return {}


def save_config(url: str, token: str) -> Path:
    """Keep the URL and token for later commands, readable by the user alone."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps({"url": url, "token": token}, indent=2) + "\n")
    return path


def gateway_url() -> str:
    return (os.environ.get("LORAG_URL") or load_config().get("url") or LOCAL_URL).rstrip("/")


def _is_local(url: str) -> bool:
    """A gateway on this machine, in the local profile (read from the environment, as Settings
    would, without loading them: user commands stay light)."""
    profile = os.environ.get("LORAG_PROFILE", "local").lower()
    return urlparse(url).hostname in LOOPBACK and profile == "local"


def gateway_token(url: str) -> str:
    """The caller's token; a new local one in the local profile, else an error saying how."""
    config = load_config()
    saved = config.get("token") if config.get("url", "").rstrip("/") == url else None
    if token := os.environ.get("LORAG_TOKEN") or saved:  # never another gateway's token
        return token
    if not _is_local(url):
        fail(f"no token for the gateway at {url}", hint=TOKEN_HINT)
    token = _make_local_token(os.environ.get("LORAG_OWNER", "default"))
    save_config(url, token)
    return token


def _make_local_token(owner: str) -> str:
    from lorag_cli.client import database, run
    from lorag_core.db import tokens
    from lorag_core.settings import Settings

    settings = Settings()

    async def create() -> str:
        async with database(settings) as conn:
            return str((await tokens.create(conn, owner, "made by the CLI on first use"))["token"])

    return run(create(), settings)


class Gateway:
    """A synchronous client of the gateway's API: JSON in, JSON out, errors as `fail`."""

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = url or gateway_url()
        self.token = token or gateway_token(self.url)
        self._http = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(30, read=600),
            headers={"Authorization": f"Bearer {self.token}"},
        )  # fmt: skip

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self._send("POST", path, json=body, **kwargs)

    def upload(self, files: list[Path]) -> dict[str, Any]:
        """Upload files as one dataset; its s3:// URI and stored names."""
        with _opened(files) as parts:
            result: dict[str, Any] = self._send("POST", "/api/datasets", files=parts)
        return result

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            fail(
                f"cannot reach the gateway at {self.url}: {exc}",
                hint="start it with `lorag serve gateway` (or `lorag serve all`), or set LORAG_URL",
            )
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            raise from_response(response.status_code, body, response.headers.get("Retry-After"))
        return response.json()


def segment(name: str) -> str:
    return quote(name, safe="")


@contextmanager
def _opened(files: list[Path]) -> Iterator[list[tuple[str, tuple[str, Any]]]]:
    handles = [path.open("rb") for path in files]
    try:
        yield [("files", (path.name, handle)) for path, handle in zip(files, handles, strict=True)]
    finally:
        for handle in handles:
            handle.close()


def explain(exc: ServiceError, *, what: str = "") -> NoReturn:
    """Print a refused call as an error with what to do, and exit."""
    if isinstance(exc, Unauthorized):
        fail(f"the gateway refused the token: {exc.message}", hint=TOKEN_HINT)
    hint = exc.hint
    if exc.status == 429 and exc.retry_after:
        hint = f"retry in {exc.retry_after:.0f} s"
    fail(f"{what}{exc.message}", hint=hint)


@contextmanager
def refusals(what: str = "") -> Iterator[None]:
    """Turn a refused call inside the block into an error with what to do."""
    try:
        yield
    except ServiceError as exc:
        explain(exc, what=what)
