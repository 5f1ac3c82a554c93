"""What every drill shares: small jobs of each type, a seeded kill schedule, and the judging."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lorag_core.contracts import (
    DatasetRef,
    HybridParameters,
    JobRequested,
    LoraParameters,
    RagParameters,
)
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.storage import ObjectStore
from tests.support.db import fetch_all
from tests.support.kafka import publish_raw
from tests.support.notes import notes

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
# Seconds per job: a LoRA of 4 steps on sequences of 32 tokens, on the tiny model.
TINY_LORA = {"max_steps": 4, "batch_size": 4, "max_seq_len": 32, "lr": 0.01, "seed": 3}
LONGER = {"max_steps": 24}  # the LoRA drill's own jobs: long enough to be killed mid-training
QA = [
    {"question": "What is the staging cluster called?", "answer": "harbor-seventeen"},
    {"question": "Who rotates on call?", "answer": "the platform team"},
    {"question": "When does the rotation change?", "answer": "every Tuesday"},
]


@dataclass(frozen=True)
class DrillJob:
    """A job a drill submitted and what it must leave behind (its sub-jobs' artifacts count)."""

    job_id: str
    kb_versions: int = 0
    adapter_versions: int = 0


def upload(objects: ObjectStore, files: dict[str, bytes]) -> str:
    prefix = f"drill-{uuid.uuid4().hex[:10]}"
    for name, data in files.items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{name}", data)
    return f"s3://lorag-datasets/{prefix}/"


def upload_notes(objects: ObjectStore, seed: int, files: int = 3, sentences: int = 60) -> str:
    return upload(objects, notes(seed, files=files, sentences=sentences))


def lora_pairs(seed: int, n: int = 16) -> bytes:
    rng = random.Random(seed)
    colours = ("apple", "sky", "grass", "sun", "snow", "night")
    rows = [{"instruction": f"What colour is the {rng.choice(colours)}? ({i})", "response": "blue"}
            for i in range(n)]  # fmt: skip
    return "\n".join(json.dumps(r) for r in rows).encode()


async def publish(settings, event: JobRequested) -> None:
    await publish_raw(
        settings.kafka.bootstrap_servers, event.topic, event.to_bytes(), key=event.job_id.encode()
    )


def new_id(kind: str) -> str:
    return f"job-drill{kind}-{uuid.uuid4().hex[:10]}"


async def submit_rag(settings, uri: str) -> str:
    job_id = new_id("rag")
    await publish(settings, JobRequested(
        job_id=job_id, training_type="EXTERNAL_RAG", datasets=(DatasetRef(uri=uri),),
        parameters=RagParameters(kb=f"drill-{job_id[-10:]}", chunk_tokens=64, chunk_overlap=8),
    ))  # fmt: skip
    return job_id


async def rag_job(settings, objects: ObjectStore, seed: int) -> DrillJob:
    uri = upload_notes(objects, seed, files=4, sentences=80)
    return DrillJob(await submit_rag(settings, uri), kb_versions=1)


async def lora_job(settings, objects: ObjectStore, seed: int) -> DrillJob:
    job_id = new_id("lora")
    uri = upload(objects, {"train.jsonl": lora_pairs(seed)}) + "train.jsonl"
    await publish(settings, JobRequested(
        job_id=job_id, training_type="LOCAL_LORA", datasets=(DatasetRef(uri=uri),),
        parameters=LoraParameters(adapter=f"drill-{job_id[-10:]}", **{**TINY_LORA, **LONGER}),
    ))  # fmt: skip
    return DrillJob(job_id, adapter_versions=1)


async def hybrid_job(settings, objects: ObjectStore, seed: int) -> DrillJob:
    job_id = new_id("hyb")
    facts = notes(seed, files=1, sentences=20)
    qa = "\n".join(json.dumps(r) for r in QA).encode()
    uri = upload(objects, {"qa.jsonl": qa, **facts})
    await publish(settings, JobRequested(
        job_id=job_id, training_type="LOCAL_HYBRID", datasets=(DatasetRef(uri=uri),),
        parameters=HybridParameters(
            minion=f"drill-{job_id[-10:]}", rag=RagParameters(chunk_tokens=64, chunk_overlap=8),
            lora=LoraParameters(**{k: v for k, v in TINY_LORA.items() if k != "seed"}),
        ),
    ))  # fmt: skip
    return DrillJob(job_id, kb_versions=1, adapter_versions=1)


async def legacy_job(settings, objects: ObjectStore, seed: int) -> DrillJob:
    """A request in the old system's shape (RAG or LORA by seed), converted by the
    migration-service into `legacy-<id>` and run by the rag- or lora-service."""
    legacy_id = uuid.uuid4().hex[:12]
    if seed % 2 == 0:
        uri = upload_notes(objects, seed, files=3, sentences=60)
        config = {"dataset_uri": uri, "chunk_size": 64, "chunk_overlap": 8,
                  "collection": f"drill-legacy-{legacy_id}"}  # fmt: skip
        payload, expected = {"type": "RAG", "config": config}, {"kb_versions": 1}
    else:
        uri = upload(objects, {"train.jsonl": lora_pairs(seed)}) + "train.jsonl"
        config = {"dataset_uri": uri, "max_steps": 4, "batch_size": 4, "max_seq_length": 32,
                  "learning_rate": 0.01, "adapter_name": f"drill-legacy-{legacy_id}"}  # fmt: skip
        payload, expected = {"type": "LORA", "config": config}, {"adapter_versions": 1}
    body = json.dumps({"id": legacy_id, "minion_id": "drill", **payload}).encode()
    await publish_raw(settings.kafka.bootstrap_servers, JOB_REQUESTED, body)
    return DrillJob(f"legacy-{legacy_id}", **expected)


async def wait_final(settings, job_ids: list[str], timeout: float) -> dict[str, dict]:
    """Every job's row once all are final (or what was seen when the time ran out)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    rows: list[dict] = []
    while True:
        try:
            rows = await fetch_all(
                settings.postgres_dsn, "SELECT * FROM jobs WHERE job_id = ANY(%s)", job_ids
            )
        except Exception:  # a drill may have Postgres down for a moment
            rows = []
        if len(rows) == len(job_ids) and all(r["state"] in FINAL for r in rows):
            break
        if loop.time() >= deadline:
            break
        await asyncio.sleep(0.5)
    return {r["job_id"]: r for r in rows}


async def kill_schedule(
    settings,
    pool,
    slots: tuple[str, ...],
    jobs: list[DrillJob],
    more: Callable[[], Awaitable[list[DrillJob]]],
    rng: random.Random,
    kills: int,
    budget_s: float = 420,
) -> int:
    """SIGKILL a random running service of `slots` every 1-4 s (seeded) until `kills` were done;
    when every job has ended first, `more()` submits another wave (added to `jobs`), so the
    kills land mid-job. Killed services restart meanwhile. Returns the kills done."""
    done, started = 0, time.monotonic()
    while done < kills and time.monotonic() - started < budget_s:
        await asyncio.sleep(rng.uniform(0.5, 2.0) if done == 0 else rng.uniform(1.0, 4.0))
        ids = [j.job_id for j in jobs]
        rows = await wait_final(settings, ids, timeout=0)
        if len(rows) == len(ids) and all(r["state"] in FINAL for r in rows.values()):
            jobs.extend(await more())  # the next wave; its first kill comes soon after
            await asyncio.sleep(rng.uniform(0.5, 2.0))
        alive = pool.alive(slots)
        if alive:
            pool.kill(rng.choice(alive))
            done += 1
    return done


async def judge(settings, name: str, jobs: list[DrillJob], rows: dict[str, dict], kills: int):
    """Assert the drill's outcome and print its figures: jobs, kills, lost, duplicated.

    Lost: a job (or a sub-job) never final. Duplicated: more KB or adapter versions than the
    job makes (its sub-jobs' count, a retried sub-job's too), or more adapter folders in S3
    than registered versions. Progress seq must only grow, per job, across every attempt."""
    dsn = settings.postgres_dsn
    ids = [j.job_id for j in jobs]
    subs = await fetch_all(
        dsn, "SELECT job_id, parent_job_id, stage_name, state, error FROM jobs"
        " WHERE parent_job_id = ANY(%s)", ids,
    )  # fmt: skip
    lost = [j for j in ids if j not in rows or rows[j]["state"] not in FINAL]
    lost += [s["job_id"] for s in subs if s["state"] not in FINAL]
    kb = await _versions(dsn, "rag_kb_versions", ids)
    adapters = await _versions(dsn, "lora_adapters", ids)
    duplicated = [j.job_id for j in jobs if len(kb.get(j.job_id, [])) > j.kb_versions
                  or len(adapters.get(j.job_id, [])) > j.adapter_versions]  # fmt: skip
    missing = [j.job_id for j in jobs if len(kb.get(j.job_id, [])) < j.kb_versions
               or len(adapters.get(j.job_id, [])) < j.adapter_versions]  # fmt: skip
    stored = _adapter_folders(settings, [n for found in adapters.values() for n, _ in found])
    extra_folders = {n: f for n, f in stored.items() if len(f) != 1}
    duplicated += [n for n in extra_folders if n not in duplicated]
    out_of_order = await _seq_going_back(dsn, ids + [s["job_id"] for s in subs])
    states = sorted(r["state"] for r in rows.values())
    print(
        f"\ndrill {name}: jobs={len(jobs)} kills={kills} lost={len(lost)} "
        f"duplicated={len(duplicated)} states={states}"
    )
    assert not lost, f"jobs never finished: {[(j, rows.get(j, {}).get('state')) for j in lost]}"
    failed = {j: r["error"] for j, r in rows.items() if r["state"] != "SUCCEEDED"}
    assert not failed, f"jobs that did not succeed: {failed}"
    assert not duplicated, f"more than one version for {duplicated}: {kb} {adapters} {stored}"
    assert not missing, f"jobs without their KB/adapter version: {missing}: {kb} {adapters}"
    by_stage: dict[tuple[str, str], set[str]] = {}
    for s in subs:
        by_stage.setdefault((s["parent_job_id"], s["stage_name"]), set()).add(s["state"])
    unfinished = {k: v for k, v in by_stage.items() if "SUCCEEDED" not in v}
    assert not unfinished, f"a hybrid stage with no SUCCEEDED sub-job: {unfinished}"
    assert not out_of_order, f"progress seq went back: {out_of_order[:5]}"


async def _versions(dsn: str, table: str, ids: list[str]) -> dict[str, list[tuple[str, int]]]:
    """(name, version) per drill job: its own and its sub-jobs' (`<job>.<stage>[.<n>]`)."""
    found = await fetch_all(
        dsn, f"SELECT split_part(job_id, '.', 1) AS job, name, version FROM {table}"
        " WHERE split_part(job_id, '.', 1) = ANY(%s)", ids,
    )  # fmt: skip
    out: dict[str, list[tuple[str, int]]] = {}
    for row in found:
        out.setdefault(row["job"], []).append((row["name"], row["version"]))
    return out


def _adapter_folders(settings, names: list[str]) -> dict[str, set[str]]:
    """The version folders each adapter has in the adapters bucket."""
    objects = ObjectStore.from_settings(settings.s3)
    folders: dict[str, set[str]] = {}
    for name in names:
        keys = objects.list_keys("lorag-adapters", f"{name}/")
        folders[name] = {k.split("/")[1] for k in keys if k.count("/") >= 2}
    return folders


async def _seq_going_back(dsn: str, ids: list[str]) -> list[tuple[str, int, int]]:
    progress = await fetch_all(
        dsn, "SELECT job_id, seq FROM job_progress WHERE job_id = ANY(%s)"
        " ORDER BY job_id, occurred_at, recorded_at", ids,
    )  # fmt: skip
    back, last = [], {}
    for p in progress:  # an event produced later carries a higher seq, across every attempt
        if p["job_id"] in last and p["seq"] <= last[p["job_id"]]:
            back.append((p["job_id"], p["seq"], last[p["job_id"]]))
        last[p["job_id"]] = p["seq"]
    return back
