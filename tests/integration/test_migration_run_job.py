"""A real `lorag migrate` run is reported as a job of its own that the tracker follows."""

import asyncio
import json
import re
import subprocess
import sys

import pytest

from tests.support.db import fetch_all

pytestmark = pytest.mark.integration


async def test_a_conversion_run_is_a_job_with_progress(settings, tracker):
    done = subprocess.run(
        [sys.executable, "-m", "lorag_cli", "migrate", "--json"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
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
