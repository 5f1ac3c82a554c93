"""`lorag migrate` asks the migration-service, whose real run is a job of its own that the
tracker follows; without the service it says how to start it."""

import asyncio
import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from lorag_local.stack import free_port
from tests.support.db import fetch_all

pytestmark = pytest.mark.integration


def migrate(service_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lorag_cli", "migrate", *args], capture_output=True, text=True,
        timeout=300, env={**os.environ, "LORAG_MIGRATION_SERVICE_URL": service_url},
    )  # fmt: skip


async def test_a_conversion_run_is_a_job_with_progress(settings, tracker):
    done = migrate(f"http://127.0.0.1:{tracker.port}", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    job_id = re.search(r"job (migration-[0-9a-f]{12})", done.stderr).group(1)
    for _ in range(100):
        rows = await fetch_all(
            settings.postgres_dsn, "SELECT * FROM jobs WHERE job_id = %s", job_id
        )
        if rows and rows[0]["state"] == "SUCCEEDED":
            break
        await asyncio.sleep(0.2)
    assert rows and rows[0]["state"] == "SUCCEEDED", rows
    assert rows[0]["result"]["summary"]["converted"] == report["converted"]
    log = await fetch_all(
        settings.postgres_dsn,
        "SELECT state FROM job_progress WHERE job_id = %s ORDER BY seq",
        job_id,
    )
    assert log[0]["state"] == "RUNNING" and log[-1]["state"] == "SUCCEEDED"


def test_without_the_service_the_error_says_to_start_it(settings):
    done = migrate(f"http://127.0.0.1:{free_port()}", "--dry-run")
    assert done.returncode == 1
    assert "migration-service is not running" in done.stderr
    assert "lorag serve migration-service" in done.stderr


def test_the_conversion_api_wants_the_service_token(settings, tracker):
    url = f"http://127.0.0.1:{tracker.port}/v1/conversions"
    assert httpx.post(url, json={"dry_run": True}).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.post(url, json={"dry_run": True}, headers=wrong).status_code == 401
    token = {"Authorization": f"Bearer {settings.service_secret}"}
    malformed = httpx.post(url, json={"dry_run": True, "batch_size": 0}, headers=token)
    assert malformed.status_code == 422 and malformed.json()["detail"][0]["loc"][-1] == "batch_size"
    unknown = httpx.get(f"{url}/migration-000000000000", headers=token)
    assert unknown.status_code == 404 and unknown.json()["code"] == "CONVERSION_NOT_FOUND"
