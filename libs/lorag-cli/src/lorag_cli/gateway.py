"""How user commands reach lorag: the gateway's API with a token, and errors that say what to do.

Where: `LORAG_URL`, else `lorag login`'s saved URL, else http://127.0.0.1:8000. Who: `LORAG_TOKEN`,
else the saved token. In the local profile, talking to a gateway on this machine with no token
yet, a token for `LORAG_OWNER` (default `default`) is made on first use and saved, so `make demo`
stays one command; anywhere else a missing token is an error that says how to get one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlparse
from urllib.request import Request, urlopen

from lorag_api.errors import ServiceError, Unauthorized, from_response
from lorag_cli.output import fail

LOCAL_URL = "http://127.0.0.1:8000"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
LOCAL_MADE = "by the CLI on first use, for the local gateway"
TIMEOUT_S = 600  # a minion's answer may wait on a chat model
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


def save_config(url: str, token: str, *, made_locally: bool = False) -> Path:
    """Keep the URL and token for later commands, readable by the user alone."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    saved = {"url": url, "token": token} | ({"made": LOCAL_MADE} if made_locally else {})
    path.write_text(json.dumps(saved, indent=2) + "\n")
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
    return _new_local_token(url)


def _new_local_token(url: str) -> str:
    token = _make_local_token(os.environ.get("LORAG_OWNER", "default"))
    save_config(url, token, made_locally=True)
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
    """A synchronous client of the gateway's API: JSON in, JSON out, errors as `fail`.

    Built on the standard library: a user command pays for no HTTP client's import (httpx alone
    costs a CLI start-up a third of a second), and these calls need no more than urllib gives.
    """

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = url or gateway_url()
        self.token = token or gateway_token(self.url)

    def get(self, path: str, **params: Any) -> Any:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self._send("GET", f"{path}?{query}" if query else path)

    def post(self, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        return self._send("POST", path, data, "application/json")

    def upload(self, files: list[Path]) -> dict[str, Any]:
        """Upload files as one dataset; its s3:// URI and stored names."""
        boundary = f"lorag-{uuid.uuid4().hex}"
        parts = []
        for path in files:
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{path.name.replace(chr(34), "_")}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            )
            parts += [head.encode(), path.read_bytes(), b"\r\n"]
        parts.append(f"--{boundary}--\r\n".encode())
        kind = f"multipart/form-data; boundary={boundary}"
        result: dict[str, Any] = self._send("POST", "/api/datasets", b"".join(parts), kind)
        return result

    def _send(self, method: str, path: str, data: bytes | None = None, kind: str = "") -> Any:
        try:
            return self._request(method, path, data, kind)
        except Unauthorized:
            if not self._renewable():
                raise
            # A token this CLI made for the local stack, whose database was since reset: make
            # another, as on first use, rather than leave the user with a refusal.
            self.token = _new_local_token(self.url)
            return self._request(method, path, data, kind)

    def _renewable(self) -> bool:
        config = load_config()
        return (
            _is_local(self.url) and not os.environ.get("LORAG_TOKEN")
            and config.get("made") == LOCAL_MADE and config.get("token") == self.token
        )  # fmt: skip

    def _request(self, method: str, path: str, data: bytes | None, kind: str) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if kind:
            headers["Content-Type"] = kind
        request = Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urlopen(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except HTTPError as answer:
            raw = answer.read()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            raise from_response(answer.code, body, answer.headers.get("Retry-After")) from None
        except (URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            fail(
                f"cannot reach the gateway at {self.url}: {reason}",
                hint="start it with `lorag serve gateway` (or `lorag serve all`), or set LORAG_URL",
            )


def segment(name: str) -> str:
    return quote(name, safe="")


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
