"""The tracker-stall probe: freeze one service process (SIGSTOP) and time how long the jobs that
another process runs take to reach SUCCEEDED in the jobs table.

Every service process is a member of the job tracker's shared consumer groups, so the frozen one
owns some of their partitions; jobs keyed there wait until it is expelled and the group
rebalances. Echo jobs (a few 0.2 s steps, no model) are spread over every partition by their ids.

    python -m tests.support.stall       compares the membership settings (real servers on free
                                        ports); prints one JSON line per option
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from aiokafka.partitioner import murmur2

from lorag_core.contracts import JobRequested
from lorag_core.messaging.topics import JOB_REQUESTED
from tests.support.kafka import publish_raw
from tests.support.processes import ServiceProcess, start_service

ECHO = "tests.support.echo_service"
TRACKER_HOST = "lorag_migration"  # hosts the tracker, runs no jobs: the process to freeze


def echo_request(job_id: str, steps: int) -> JobRequested:
    """A LOCAL_FINE_TUNING request the echo service counts to `steps` (0.2 s a step)."""
    return JobRequested(
        job_id=job_id,
        training_type="LOCAL_FINE_TUNING",
        minion_id=f"steps={steps}",
        datasets=[{"uri": "s3://lorag-datasets/echo/"}],  # the echo worker reads none
    )


SETTLE_S = 5.0  # a joining member rebalances the others within a heartbeat or two


def job_ids_on_every_partition(per_partition: int, partitions: int) -> list[str]:
    """Job ids that the producers' default partitioner (murmur2 of the key, as Kafka's Java
    client) spreads evenly over the partitions, so every member's share is exercised."""
    ids: dict[int, list[str]] = {p: [] for p in range(partitions)}
    while any(len(group) < per_partition for group in ids.values()):
        job_id = f"job-stall-{uuid.uuid4().hex[:10]}"
        group = ids[(murmur2(job_id.encode()) & 0x7FFFFFFF) % partitions]
        if len(group) < per_partition:
            group.append(job_id)
    return [job_id for group in ids.values() for job_id in group]


async def job_lags(
    bootstrap: str,
    dsn: str,
    *,
    partitions: int = 3,
    per_partition: int = 3,
    steps: int = 2,
    timeout: float = 180,
) -> list[float]:
    """Publish echo jobs on every partition at once; seconds from publishing each until it is
    SUCCEEDED in the jobs table (its request and its progress both projected)."""
    job_ids = job_ids_on_every_partition(per_partition, partitions)
    jobs = len(job_ids)
    published: dict[str, float] = {}
    for job_id in job_ids:
        await publish_raw(
            bootstrap, JOB_REQUESTED, echo_request(job_id, steps).to_bytes(), key=job_id.encode()
        )
        published[job_id] = time.monotonic()
    lags: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        while len(lags) < jobs and time.monotonic() < deadline:
            cur = await conn.execute(
                "SELECT job_id FROM jobs WHERE job_id = ANY(%s) AND state = 'SUCCEEDED'",
                (job_ids,),
            )
            now = time.monotonic()
            for (job_id,) in await cur.fetchall():
                lags.setdefault(job_id, now - published[job_id])
            await asyncio.sleep(0.05)
    missing = [j for j in job_ids if j not in lags]
    if missing:
        raise AssertionError(f"{len(missing)} of {jobs} echo jobs not SUCCEEDED in {timeout} s")
    return [lags[j] for j in job_ids]


async def frozen_lags(
    frozen: ServiceProcess, bootstrap: str, dsn: str, partitions: int = 3
) -> tuple[list[float], float]:
    """Freeze `frozen`, publish the jobs at once, thaw it; the lags, and how long it was frozen."""
    frozen.process.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        lags = await job_lags(bootstrap, dsn, partitions=partitions)
    finally:
        frozen.process.send_signal(signal.SIGCONT)
    return lags, time.monotonic() - stopped


OPTIONS: dict[str, dict[str, str]] = {
    # aiokafka's and FastStream's defaults: what every service ran with before
    "library defaults (session 10 s, heartbeat 3 s, max poll 300 s)": {
        "LORAG_KAFKA_SESSION_TIMEOUT_MS": "10000",
        "LORAG_KAFKA_HEARTBEAT_INTERVAL_MS": "3000",
        "LORAG_KAFKA_REBALANCE_TIMEOUT_MS": "10000",
        "LORAG_KAFKA_MAX_POLL_INTERVAL_MS": "300000",
    },
    "short session (6 s, heartbeat 1 s)": {
        "LORAG_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LORAG_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    },
    "short session + static membership": {
        "LORAG_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LORAG_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "LORAG_KAFKA_STATIC_MEMBERSHIP": "true",
    },
}


async def compare(log_dir: Path, names: list[str]) -> None:
    """For each option: an echo service and two tracker hosts; lags with none frozen, then with
    one tracker host frozen. One JSON line per option."""
    bootstrap = os.environ["LORAG_KAFKA_BOOTSTRAP_SERVERS"]
    dsn = os.environ["LORAG_POSTGRES_DSN"]
    for name in names:
        env = {**OPTIONS[name], "LORAG_WORKER_LEASE_S": "5"}
        roles = ((ECHO, "echo"), (TRACKER_HOST, "tracker-a"), (TRACKER_HOST, "tracker-b"))
        started = [
            await asyncio.to_thread(
                start_service, module, log_dir, **env, LORAG_INSTANCE_ID=f"{tag}-{name[:5]}"
            )
            for module, tag in roles
        ]
        try:
            started[0].wait_log("claiming", timeout=120)
            await asyncio.sleep(SETTLE_S)  # ready is answered before the groups are joined
            calm = await job_lags(bootstrap, dsn)
            lags, frozen_s = await frozen_lags(started[2], bootstrap, dsn)
            await asyncio.sleep(SETTLE_S)  # the thawed member rejoins
            after = await job_lags(bootstrap, dsn)
        finally:
            for process in started:
                await asyncio.to_thread(process.stop)
        print(json.dumps({
            "option": name, "calm_max_s": round(max(calm), 2),
            "frozen_max_s": round(max(lags), 2),
            "frozen_lags_s": sorted(round(x, 2) for x in lags),
            "frozen_for_s": round(frozen_s, 1), "after_thaw_max_s": round(max(after), 2),
        }), flush=True)  # fmt: skip


def main(argv: list[str]) -> int:
    from lorag_core.db import migrations
    from lorag_core.settings import Settings
    from tests.support.stack import export, real_servers

    names = [n for n in OPTIONS if not argv or any(a in n for a in argv)]
    with real_servers() as (endpoints, _):
        export(endpoints)
        migrations.upgrade(Settings().postgres_dsn)
        log_dir = Path(tempfile.mkdtemp(prefix="lorag-stall-"))
        print(f"service logs in {log_dir}", flush=True)
        asyncio.run(compare(log_dir, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
