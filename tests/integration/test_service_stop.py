"""A service whose stop cannot finish exits by itself once LORAG_STOP_TIMEOUT_S has passed, and
its log says what it was waiting on: a test service once outlived its test in CI and ran the
next tests' jobs."""

import time
import uuid

import pytest

from lorag_core.contracts import JobRequested
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.service.deadline import EXIT_STOP_OVERRUN
from tests.support.db import wait_for_job
from tests.support.kafka import publish_raw
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
STOP_TIMEOUT_S = 3


async def test_a_stop_held_up_by_a_handler_ends_at_the_deadline_and_names_it(settings, logs_dir):
    # the tracker's intake handler holds 120 s after its effect (a job row), before its ack:
    # the graceful stop waits for it (up to FastStream's 30 s) and would outlast the deadline
    service = start_service(
        "lorag_migration", logs_dir, LORAG_FAULT_HOLD_BEFORE_ACK_S="120",
        LORAG_STOP_TIMEOUT_S=str(STOP_TIMEOUT_S),
    )  # fmt: skip
    job_id = f"job-stop-{uuid.uuid4().hex[:10]}"
    event = JobRequested(job_id=job_id, training_type="LORA", datasets=[{"uri": "s3://b/k"}])
    await publish_raw(
        settings.kafka.bootstrap_servers, JOB_REQUESTED, event.to_bytes(), key=job_id.encode()
    )
    await wait_for_job(settings.postgres_dsn, job_id, state="QUEUED")
    service.wait_log("before the ack (fault injection)", 30)

    started = time.monotonic()
    code = service.stop(timeout=30)
    took = time.monotonic() - started

    log = service.log_path.read_text(errors="replace")  # all of it: every task is listed
    assert code == EXIT_STOP_OVERRUN, log
    assert STOP_TIMEOUT_S <= took < STOP_TIMEOUT_S + 10, f"exited {took:.1f} s after SIGTERM"
    assert f"did not stop within {STOP_TIMEOUT_S} s of being asked to" in log
    # the handler's task, down to the await that holds it
    assert "in Delivery._attempt" in log, log
