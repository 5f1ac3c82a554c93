"""Where the tracker's fold of progress events spends its time, step by step.

`python -m bench.profile_projection`: on a private stack, the events of `bench events` (10,000 jobs
x 10) are consumed from Kafka, decoded and folded batch by batch exactly as the tracker does
(attempt count, fold transaction, forget), with each step timed on its own and run one after
the other (the tracker overlaps fetching and decoding the next batch with the fold); then the
bench's raw baseline runs on the same events. It prints one line per step (seconds and
events/s); it is a profile, not a judged figure (`bench events` judges the tracker as a process).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.events import progress_events, raw_executemany_rate
from lorag_core.contracts import JobProgress
from lorag_core.db import dead_letters, jobs
from lorag_core.db.changes import CHANNEL as CHANGED_CHANNEL
from lorag_core.db.pool import open_pool
from lorag_core.domain.job_state import JobPosition, JobState
from lorag_core.messaging.delivery import counted_keys, decode
from lorag_core.settings import Settings
from lorag_core.tracker import PROGRESS_BATCH

TOPIC = "bench.profile.progress"
spent: dict[str, float] = defaultdict(float)


@contextmanager
def step(name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    spent[name] += time.perf_counter() - started


async def publish(settings: Settings, payloads: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        sends = [await producer.send(TOPIC, value, key=key) for key, value in payloads]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def fold_all(settings: Settings, total: int) -> float:
    """Consume and fold every event as the tracker does; the wall time."""
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=settings.kafka.bootstrap_servers, group_id="bench-profile",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    pool = await open_pool(settings.postgres_dsn)
    done, batches, started = 0, 0, time.perf_counter()
    try:
        while done < total:
            with step("kafka getmany"):
                got = await consumer.getmany(timeout_ms=500, max_records=PROGRESS_BATCH)
            records = [r for part in got.values() for r in part]
            if not records:
                continue
            batches += 1
            with step("decode (pydantic)"):
                events = [decode(r, JobProgress, 10**7) for r in records]
            keys = counted_keys(records)
            with step("attempt count (txn)"):
                async with pool.connection() as conn:
                    await dead_letters.begin_attempt(conn, "bench-profile", keys)
            await fold_batch(pool, events)
            with step("forget attempts (txn)"):
                async with pool.connection() as conn:
                    await dead_letters.end_attempts(conn, ["bench-profile"], keys)
            with step("kafka commit"):
                await consumer.commit()
            done += len(records)
    finally:
        await consumer.stop()
        await pool.close()
    print(f"{batches} batches of {total / batches:.0f} events on average")
    return time.perf_counter() - started


async def fold_batch(pool, events: list[JobProgress]) -> None:
    """jobs.apply_progress's steps, each timed, in the tracker's transaction."""
    with step("fold: connection"):
        cm = pool.connection()
        conn = await cm.__aenter__()
    try:
        await timed_apply_progress(conn, events)
    finally:
        with step("fold: commit"):
            await cm.__aexit__(None, None, None)


async def timed_apply_progress(conn, events: list[JobProgress]) -> None:
    """jobs.apply_progress, its steps timed apart (keep in step with it)."""
    job_ids = sorted({e.job_id for e in events})
    with step("fold: idle limit + stage + create + lock jobs"):
        async with conn.pipeline():
            await conn.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', '30s', true)"
            )
            await conn.execute(jobs.STAGE_PROGRESS)
            await conn.execute(
                "INSERT INTO jobs (job_id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (job_ids,),
            )
            cur = await conn.execute(
                "SELECT job_id, state, last_seq FROM jobs WHERE job_id = ANY(%s)"
                " ORDER BY job_id FOR UPDATE",
                (job_ids,),
            )
            rows = await cur.fetchall()
    with step("fold: python (advance + rows)"):
        positions = {r["job_id"]: JobPosition(JobState(r["state"]), r["last_seq"]) for r in rows}
        folded = jobs.fold(events, positions)
        arrays = jobs._position_arrays(folded.newest)
    async with conn.cursor() as c:
        with step("fold: COPY log rows"):
            async with c.copy(jobs.COPY_PROGRESS) as copy:
                for row in folded.log_rows:
                    await copy.write_row(row)
        with step("fold: FOLD_BATCH statement"):
            await c.execute(jobs.FOLD_BATCH, (*arrays, CHANGED_CHANNEL))


async def main() -> None:
    settings = Settings()
    events = progress_events()
    payloads = [(e.job_id.encode(), e.to_bytes()) for e in events]
    await publish(settings, payloads)
    with step("decode alone, all events"):
        for _, value in payloads:
            JobProgress.model_validate_json(value)
    spent_decode = spent.pop("decode alone, all events")
    gc.freeze()  # as a started service does (lorag_core.service.host.settle_heap)
    wall = await fold_all(settings, len(events))
    n = len(events)
    print(f"tracker-like fold: {wall:.2f}s, {n / wall:,.0f} events/s")
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {name:34s} {seconds:6.2f}s  {100 * seconds / wall:5.1f}%")
    print(f"  (decode alone, measured apart      {spent_decode:6.2f}s)")
    raw = await raw_executemany_rate(settings, progress_events())
    print(f"raw baseline: {raw:,.0f} events/s; ratio {n / wall / raw:.2f}")


if __name__ == "__main__":
    from bench.__main__ import servers

    with servers():
        asyncio.run(main())
