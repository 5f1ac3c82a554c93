"""A frozen service (SIGSTOP) stalls job state for other jobs no longer than the stated bound.

Every service process is a member of the job tracker's shared consumer groups. A frozen member
sends no heartbeats, so the coordinator expels it after LORAG_KAFKA_SESSION_TIMEOUT_MS and its
partitions go to the other members; jobs keyed there wait that long, and no longer. Frozen inside
a tracker transaction, it also holds those jobs' rows locked: Postgres ends that transaction after
LORAG_POSTGRES_TRACKER_IDLE_IN_TRANSACTION_MS, or the members it was expelled for would wait on
the locks until it thaws.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from lorag_core.settings import KafkaSettings, PostgresSettings
from tests.support.processes import start_service
from tests.support.stall import ECHO, SETTLE_S, TRACKER_HOST, frozen_lags, job_lags

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
# The bound (deploy/k8s/CAPACITY.md, "Tracker stall"): the session timeout, then at most one
# heartbeat for the live members to hear of the rebalance, the rebalance itself, and the echo
# job's own run (2 steps of 0.2 s) and projection, with room for a loaded 2-core machine.
STALL_BOUND_S = (
    max(KafkaSettings().session_timeout_ms, PostgresSettings().tracker_idle_in_transaction_ms)
    / 1000
    + 9
)


@pytest.fixture(scope="module")
def members(settings, logs_dir):
    """An echo service that runs the jobs, and a tracker host (no jobs of its own) to freeze."""
    echo = start_service(ECHO, logs_dir, LORAG_INSTANCE_ID="stall-echo")
    frozen = start_service(TRACKER_HOST, logs_dir, LORAG_INSTANCE_ID="stall-frozen")
    echo.wait_log("worker stall-echo claiming")
    yield echo, frozen
    for service in (frozen, echo):
        service.process.send_signal(signal.SIGCONT)  # should the test have failed mid-freeze
        service.stop()


async def test_a_frozen_service_stalls_other_jobs_no_longer_than_the_bound(settings, members):
    echo, frozen = members
    bootstrap, dsn = settings.kafka.bootstrap_servers, settings.postgres_dsn
    partitions = settings.kafka.partitions
    # ready is answered before the groups are joined: once both are members of every tracker
    # group, the one to freeze owns partitions of each (checked below: the freeze held jobs)
    await asyncio.sleep(SETTLE_S)
    calm = await job_lags(bootstrap, dsn, partitions=partitions)
    # the jobs are on every partition; it thaws only once all of them are SUCCEEDED
    lags, frozen_s = await frozen_lags(frozen, bootstrap, dsn, partitions)
    print(
        f"echo jobs on every partition: {max(calm):.1f} s at most with none frozen, "
        f"{max(lags):.1f} s with a tracker host frozen (bound {STALL_BOUND_S:.0f} s); "
        f"lags {sorted(round(x, 1) for x in lags)}; thawed after {frozen_s:.1f} s"
    )
    assert max(lags) <= STALL_BOUND_S, f"job state stalled {max(lags):.1f} s"
    # the freeze did hold the jobs on its partitions: until it was expelled
    assert max(lags) >= KafkaSettings().session_timeout_ms / 2000, "the freeze held nothing"

    # thawed, it finds itself expelled, rejoins, and the groups carry on with it
    after = await job_lags(bootstrap, dsn, partitions=partitions)
    assert max(after) <= STALL_BOUND_S, f"after the thaw: {max(after):.1f} s"
    assert frozen.process.poll() is None and echo.process.poll() is None
    assert frozen.stop() == 0  # and it still stops cleanly


async def test_a_service_frozen_inside_a_tracker_transaction_holds_no_job_past_the_bound(
    settings, members, logs_dir
):
    """The stalled-stage test's CI failure: frozen with job rows locked, not just partitions."""
    held = start_service(
        TRACKER_HOST, logs_dir, LORAG_INSTANCE_ID="stall-held",
        LORAG_FAULT_HOLD_IN_PROGRESS_TXN_S="300",  # each progress batch: applied, not committed
    )  # fmt: skip
    bootstrap, dsn = settings.kafka.bootstrap_servers, settings.postgres_dsn

    async def freeze_inside_a_transaction() -> None:
        await asyncio.to_thread(held.wait_log, "holding the progress transaction", 60)
        held.process.send_signal(signal.SIGSTOP)

    try:
        await asyncio.sleep(SETTLE_S)
        freezer = asyncio.create_task(freeze_inside_a_transaction())
        lags = await job_lags(bootstrap, dsn, partitions=settings.kafka.partitions, timeout=60)
        await freezer  # it did freeze inside one
    finally:
        held.process.send_signal(signal.SIGCONT)
        held.stop()
    print(f"frozen inside a transaction: {max(lags):.1f} s at most (bound {STALL_BOUND_S:.0f} s)")
    assert max(lags) <= STALL_BOUND_S, f"job state stalled {max(lags):.1f} s"
