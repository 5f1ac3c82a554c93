"""Where one EXTERNAL_RAG job's time goes through the real service, request to SUCCEEDED.

`python -m bench.profile_rag_job [--py-spy OUT] [--jobs N]`: a private stack, the tracker and the
rag-service as `bench rag` starts them; N jobs (2 by default), each the 1,500-record dataset of
`bench rag` into a fresh KB. For each job, the moments its rows record (accepted into the work
queue, every progress event as its producer stamped it and as the tracker recorded it) against
the bench's clock (published, SUCCEEDED seen), and the service's busiest threads during the job
against the raw encode's: the share of the time each ran, waited for a core, or was blocked
(`bench.schedstat`). `--py-spy OUT` samples the rag-service during the first job (py-spy, if
installed) and prints its busiest frames per thread. Then the timed queries of `bench rag`
against a trivial route of the same service (the HTTP hop alone). A profile, not a judged
figure.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg

from bench import schedstat
from bench.rag import dataset, ingest, raw_encode, raw_encode_setup, upload
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from tests.support.processes import start_service

SPY = Path(sys.executable).parent / "py-spy"  # pip install py-spy into the venv to use it


async def phases(settings: Settings, job_id: str) -> list[tuple[str, Any]]:
    """(label, timestamp) of a job's recorded moments, in order."""
    async with await psycopg.AsyncConnection.connect(settings.postgres_dsn) as conn:
        job = await (
            await conn.execute(
                "SELECT requested_at, created_at, finished_at FROM jobs WHERE job_id = %s",
                (job_id,),
            )
        ).fetchone()
        work = await (
            await conn.execute("SELECT created_at FROM work_items WHERE job_id = %s", (job_id,))
        ).fetchone()
        log = await (
            await conn.execute(
                "SELECT seq, state, stage, percent, occurred_at, recorded_at FROM job_progress"
                " WHERE job_id = %s ORDER BY seq",
                (job_id,),
            )
        ).fetchall()
    out = [("requested_at (event)", job[0]), ("tracker: job row", job[1])]
    out.append(("rag: accepted into work_items", work[0]))
    for seq, state, stage, percent, occurred, recorded in log:
        pct = f"{percent:.0f}%" if percent is not None else ""
        out.append((f"#{seq} {state} {stage or ''} {pct} (rag stamped)", occurred))
        if state in ("SUCCEEDED", "FAILED", "VALIDATING"):
            out.append((f"#{seq} {state} (tracker recorded)", recorded))
    out.append(("tracker: finished_at", job[2]))
    return out


def print_phases(rows: list[tuple[str, Any]], total_s: float) -> None:
    start = rows[0][1]
    previous = start
    for label, at in rows:
        print(f"  {label:<52} +{(at - start).total_seconds():7.3f} s"
              f"  (Δ {(at - previous).total_seconds() * 1000:7.1f} ms)")  # fmt: skip
        previous = at
    print(f"  {'bench: publish to SUCCEEDED seen':<52}  {total_s:7.3f} s")


def _spied_python(out: Path) -> Path:
    """A launcher that runs the service's python under `py-spy record` (wall time, all threads);
    attaching to a running process is refused on this machine."""
    script = out.with_suffix(".sh")
    script.write_text(
        "#!/bin/sh\n"
        f"exec {SPY} record -r 100 --idle --threads --format raw -o {out} "
        f'-- {sys.executable} "$@"\n'
    )
    script.chmod(0o755)
    return script


def spy_summary(raw: Path, top: int = 25) -> None:
    """The frames that hold most samples, per thread (py-spy's raw collapsed stacks)."""
    per_thread: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread, n = frames[0], int(count)
        totals[thread] += n
        for frame in set(frames[1:]):
            per_thread[thread][frame] += n
    for thread, n in totals.most_common(8):
        print(f"  {thread}: {n} samples")
        for frame, k in per_thread[thread].most_common(top):
            print(f"    {k:6d}  {frame[:150]}")


async def hop(port: int, secret: Any, n: int = 300) -> float:
    """p50 ms of GET /health on the same service: the HTTP hop alone (no token, no route)."""
    import httpx

    out = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(n + 20):
            started = time.perf_counter()
            (await client.get("/health")).raise_for_status()
            if i >= 20:
                out.append((time.perf_counter() - started) * 1000)
    return sorted(out)[len(out) // 2]


async def main_async(spy: Path | None, jobs: int) -> None:
    settings, work = Settings(), Path(tempfile.mkdtemp(prefix="lorag-profile-"))
    env = {"LORAG_CHROMA_PATH": str(work / "chroma"), "LORAG_RAG_EMBED_BATCH_SIZE": "64"}
    tracker = await asyncio.to_thread(start_service, "lorag_migration", work / "logs")
    spied = spy is not None and SPY.exists()
    launcher = _spied_python(spy) if spied else None
    rag = await asyncio.to_thread(
        start_service, "lorag_rag", work / "logs", python=launcher, ready_timeout=180, **env
    )
    service_pid = rag.process.pid
    if launcher is not None:  # the service is py-spy's child
        service_pid = psutil.Process(rag.process.pid).children()[0].pid
    try:
        objects = ObjectStore.from_settings(settings.s3)
        data = dataset()
        uri = upload(objects, {"data.jsonl": data})
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        for n in range(jobs):
            kb = f"profile-{uuid.uuid4().hex[:6]}"
            with schedstat.Watch(service_pid) as watch:
                seconds, summary, _ = await ingest(settings, uri, kb, service_pid)
            job_threads = watch.busiest(seconds)
            if launcher is not None:  # py-spy writes its samples on SIGINT: one job only
                rag.process.send_signal(signal.SIGINT)
                await asyncio.to_thread(rag.process.wait, 60)
            async with await psycopg.AsyncConnection.connect(settings.postgres_dsn) as conn:
                job_id = (
                    await (
                        await conn.execute(
                            "SELECT job_id FROM jobs WHERE result->'summary'->>'kb' = %s",
                            (kb,),
                        )
                    ).fetchone()
                )[0]
            if n == 0:
                embedder, texts = await asyncio.to_thread(raw_encode_setup, data)
            with schedstat.Watch(os.getpid()) as watch:
                raw_s, _, _ = await asyncio.to_thread(raw_encode, embedder, texts)  # right after
            raw_threads = watch.busiest(raw_s)
            raw = len(texts) / raw_s
            rate = summary["chunks"] / seconds
            print(f"job {n + 1}: {summary['chunks']} chunks, {seconds:.3f} s, {rate:.1f} chunks/s "
                  f"(pipeline's own {summary['chunks_per_s']}); raw encode right after "
                  f"{raw:.1f} chunks/s: ratio {rate / raw:.3f}")  # fmt: skip
            print_phases(await phases(settings, job_id), seconds)
            for label, shares in (("rag-service", job_threads), ("raw encode", raw_threads)):
                print(f"  busiest threads, {label}:")
                for share in shares:
                    print(f"    {share}")
            if launcher is not None:
                break
        if launcher is None:
            print(f"GET /health p50: {await hop(rag.port, settings.service_secret):.2f} ms")
    finally:
        if psutil.pid_exists(service_pid):
            os.kill(service_pid, signal.SIGTERM)
        await asyncio.to_thread(rag.stop)
        await asyncio.to_thread(tracker.stop)
    if spy and spy.exists():
        spy_summary(spy)


def main() -> None:
    from bench.__main__ import servers

    parser = argparse.ArgumentParser(prog="python -m bench.profile_rag_job")
    parser.add_argument("--py-spy", type=Path, dest="spy")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with servers():
        asyncio.run(main_async(args.spy, args.jobs))
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    main()
