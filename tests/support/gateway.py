"""A real gateway process for tests, wired to the services a test started, and the CLI's
environment to reach it as a given owner."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

from lorag_core.db import tokens
from lorag_local.stack import free_port
from tests.support.processes import ServiceProcess, start_service

URL_SETTING = {
    "lorag_rag": "LORAG_RAG_SERVICE_URL",
    "lorag_lora": "LORAG_LORA_SERVICE_URL",
    "lorag_hybrid": "LORAG_HYBRID_SERVICE_URL",
    "lorag_migration": "LORAG_MIGRATION_SERVICE_URL",
}


def service_urls(*services: ServiceProcess) -> dict[str, str]:
    """The address settings that point a process at services started by a test."""
    urls = {URL_SETTING[s.module]: f"http://127.0.0.1:{s.port}" for s in services}
    for service in services:
        if api_port := getattr(service, "api_port", None):  # the lora-service's OpenAI API
            urls["LORAG_LORA_OPENAI_URL"] = f"http://127.0.0.1:{api_port}/v1"
    return urls


def make_token(owner: str) -> str:
    """A fresh gateway token for `owner`, made in the session's Postgres (from any thread,
    event loop or not)."""

    async def create() -> str:
        dsn = os.environ["LORAG_POSTGRES_DSN"]
        async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, row_factory=dict_row
        ) as conn:
            return str((await tokens.create(conn, owner, "test"))["token"])

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create()).result()


@dataclass
class RunningGateway:
    url: str
    process: ServiceProcess
    config_home: Path
    _tokens: dict[str, str] = field(default_factory=dict)

    def token(self, owner: str) -> str:
        if owner not in self._tokens:
            self._tokens[owner] = make_token(owner)
        return self._tokens[owner]

    def cli_env(self, owner: str = "default") -> dict[str, str]:
        """The environment of a `lorag` command acting as `owner` through this gateway."""
        return {
            **os.environ,
            "LORAG_URL": self.url,
            "LORAG_TOKEN": self.token(owner),
            "XDG_CONFIG_HOME": str(self.config_home),  # never the developer's saved login
        }

    def cli(
        self, *args: str, owner: str = "default", timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run `lorag ARGS` as `owner`; the result, whatever its exit status."""
        return subprocess.run(
            [sys.executable, "-m", "lorag_cli", *args], env=self.cli_env(owner),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip


def start_gateway(
    logs_dir: Path, *services: ServiceProcess, cwd: Path | None = None, **env: str
) -> RunningGateway:
    """Start the gateway pointed at `services`, and wait until its API answers."""
    port = free_port()
    process = start_service(
        "lorag_gateway", logs_dir, cwd=cwd, LORAG_GATEWAY_PORT=str(port),
        **service_urls(*services), **env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:  # the API starts after the broker connected, a moment after /ready
        try:
            urllib.request.urlopen(f"{url}/api/openapi.json", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway API not up at {url}:\n{process.log()}") from None
            time.sleep(0.2)
    config_home = logs_dir / f"cli-config-{port}"
    config_home.mkdir(parents=True, exist_ok=True)
    return RunningGateway(url, process, config_home)
