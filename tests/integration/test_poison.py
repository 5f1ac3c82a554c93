"""Poison messages: a record that kills its consumer every time is dead-lettered after N starts
(the count survives the crashes), a record refused by several groups is dead-lettered once, and
`lorag dlq` lists, shows and replays dead letters."""

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from lorag_core.contracts import JobRequested, dead_letter_topic
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.tracker import TRACKER_GROUP
from tests.support.db import fetch_all, wait_for_job
from tests.support.kafka import publish_raw, read_topic
from tests.support.processes import ServiceProcess, start_service

pytestmark = pytest.mark.integration
MAX_ATTEMPTS = 2


def lorag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lorag_cli", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


async def letters_keyed(dsn: str, key: str) -> list[dict]:
    return await fetch_all(
        dsn, "SELECT * FROM dead_letters WHERE key = %s ORDER BY id", key.encode()
    )


async def test_a_record_that_kills_its_consumer_every_time_is_dead_lettered_once(
    settings, logs_dir
):
    dsn, bootstrap = settings.postgres_dsn, settings.kafka.bootstrap_servers
    job_id = f"job-poison-{uuid.uuid4().hex[:10]}"
    event = JobRequested(
        job_id=job_id, training_type="EXTERNAL_RAG", datasets=[{"uri": "s3://b/k"}]
    )
    original = event.to_bytes()
    await publish_raw(bootstrap, JOB_REQUESTED, original, key=job_id.encode())

    # Every process dies (exit 137, as SIGKILLed) on starting to handle the marked record.
    crashes, doomed = 0, None
    deadline = time.monotonic() + 240
    while not await letters_keyed(dsn, job_id):
        assert time.monotonic() < deadline, f"no dead letter after {crashes} crashes"
        if doomed is None or doomed.process.poll() is not None:
            if doomed is not None:
                crashes += 1
            try:
                doomed = start_service(
                    "lorag_migration", logs_dir, LORAG_FAULT_CRASH_ON=job_id,
                    LORAG_KAFKA_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
                )  # fmt: skip
            except RuntimeError:  # died before it was ready: that is a crash too
                crashes += 1
                doomed = None
        time.sleep(0.3)
    assert isinstance(doomed, ServiceProcess)
    doomed.stop()
    print(f"\npoison: {crashes} crashes before the dead letter (max attempts {MAX_ATTEMPTS})")

    (letter,) = await letters_keyed(dsn, job_id)
    assert crashes == MAX_ATTEMPTS, "each start of handling is counted once, crashes included"
    assert letter["reason_code"] == "CONSUMER_CRASHED" and letter["attempts"] == MAX_ATTEMPTS
    assert letter["consumers"] == [f"{TRACKER_GROUP}.requested"]
    assert bytes(letter["payload"]) == original
    assert not await fetch_all(dsn, "SELECT 1 FROM jobs WHERE job_id = %s", job_id)
    assert not await fetch_all(
        dsn, "SELECT 1 FROM delivery_attempts WHERE \"offset\" = %s AND topic = %s",
        letter["offset"], JOB_REQUESTED,
    ), "the attempt count is forgotten once the record is set aside"  # fmt: skip
    published = [
        m for m in await read_topic(
            bootstrap, dead_letter_topic(JOB_REQUESTED), until=lambda s: False, timeout=8
        ) if m.get("key") == job_id
    ]  # fmt: skip
    assert len(published) == 1 and published[0]["id"] == letter["id"]

    # lorag dlq: listed, shown whole, replayed to a healthy consumer that now records the job.
    listed = lorag("dlq", "ls", "--topic", JOB_REQUESTED, "--json")
    assert listed.returncode == 0, listed.stderr
    assert any(r["id"] == letter["id"] for r in json.loads(listed.stdout))
    shown = lorag("dlq", "show", str(letter["id"]), "--json")
    assert shown.returncode == 0, shown.stderr
    whole = json.loads(shown.stdout)
    assert (
        whole["payload_base64"]
        and whole["key"] == job_id
        and whole["reason_code"] == ("CONSUMER_CRASHED")
    )
    people = lorag("dlq", "show", str(letter["id"]))
    assert people.returncode == 0 and job_id in people.stdout, people.stderr
    missing = lorag("dlq", "show", "999999999")
    assert missing.returncode == 1 and "lorag dlq ls" in missing.stderr

    healthy = start_service("lorag_migration", logs_dir)
    try:
        replayed = lorag("dlq", "replay", str(letter["id"]), "--json")
        assert replayed.returncode == 0, replayed.stderr
        await wait_for_job(dsn, job_id, state="QUEUED", timeout=60)
        again = lorag("dlq", "replay", str(letter["id"]))  # idempotent: still one job
        assert again.returncode == 0, again.stderr
        (row,) = await fetch_all(
            dsn, "SELECT replays FROM dead_letters WHERE id = %s", letter["id"]
        )
        assert row["replays"] == 2
        time.sleep(3)
        assert len(await fetch_all(dsn, "SELECT 1 FROM jobs WHERE job_id = %s", job_id)) == 1
    finally:
        healthy.stop()


async def test_a_record_every_group_refuses_is_dead_lettered_once(settings, logs_dir):
    dsn, bootstrap = settings.postgres_dsn, settings.kafka.bootstrap_servers
    tracker = start_service("lorag_migration", logs_dir)
    echo = start_service("tests.support.echo_service", logs_dir)  # its own intake group
    marker = f"garbage-{uuid.uuid4().hex[:10]}"
    groups = {f"{TRACKER_GROUP}.requested", "lorag.echo-service"}
    try:
        await publish_raw(bootstrap, JOB_REQUESTED, b"\x00 not json", key=marker.encode())
        deadline = time.monotonic() + 60
        while True:
            rows = await letters_keyed(dsn, marker)
            if rows and set(rows[0]["consumers"]) >= groups:
                break
            assert time.monotonic() < deadline, f"groups that refused it: {rows}"
            time.sleep(0.3)
    finally:
        echo.stop()
        tracker.stop()
    assert len(rows) == 1 and rows[0]["reason_code"] == "NOT_JSON"
    published = [
        m for m in await read_topic(
            bootstrap, dead_letter_topic(JOB_REQUESTED), until=lambda s: False, timeout=8
        ) if m.get("key") == marker
    ]  # fmt: skip
    assert len(published) == 1, f"one letter, not one per group: {published}"
    all_of_topic = lorag("dlq", "replay", "--all", "--topic", "job.requested.dlq", "--json")
    assert all_of_topic.returncode == 0, all_of_topic.stderr
    assert rows[0]["id"] in {r["id"] for r in json.loads(all_of_topic.stdout)}
    nothing_left = lorag("dlq", "replay", "--all", "--topic", JOB_REQUESTED)
    assert nothing_left.returncode == 1 and "--again" in nothing_left.stderr
