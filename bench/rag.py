"""rag-service: ingestion rate vs raw encode, unchanged re-ingest, query latency, peak RSS.

The query-latency KB (about 10,000 chunks) is built by the service, through a job, from this
Python's standard-library docstrings; queries go through the service's HTTP API, against the
same questions embedded and searched in this process. Re-ingesting it unchanged gives the 10k
figure of the file manifest.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

from bench.report import Figure, at_least, at_most, cpu_seconds, figure, percentile
from bench.stdlib_corpus import corpus
from bench.waiting import JobEnds
from lorag_core.contracts import DatasetRef, JobRequested, RagParameters
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from tests.support.kafka import publish_raw
from tests.support.processes import start_service

RECORDS = 1_500
QUERIES = 300
CORES = len(os.sched_getaffinity(0))
# 40-token chunks of this Python's standard-library docstrings: about 10,000 of them.
STDLIB_PARAMS = {"chunk_tokens": 40, "chunk_overlap": 8}
QUESTIONS = [
    "How do I parse command line arguments?", "Return the absolute path of a file",
    "Compress data with zlib", "Create a temporary directory", "Decode a base64 string",
    "Sort a list in place", "Run a subprocess and capture its output", "Format a date",
    "Read a CSV file", "Wait for a thread to finish", "Compute a SHA-256 digest",
    "Open a socket connection", "Parse a URL into its parts", "Serialize an object to JSON",
]  # fmt: skip
WORDS = [
    "amber",
    "basil",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kestrel",
    "lumen",
]


def dataset(first: int = 0) -> bytes:
    """JSONL records of ~50 tokens each: one 64-token chunk per record (numbered from `first`)."""
    rows = [
        f"Record {i}: the {WORDS[i % 12]} crew of unit {i * 7} inspected valve {i % 97} and "
        f"logged pressure {i % 13} bar, then handed the {WORDS[(i + 5) % 12]} shift to crew "
        f"{i % 5}."
        for i in range(first, first + RECORDS)
    ]
    return "\n".join(json.dumps({"text": r}) for r in rows).encode()


async def ingest(
    settings: Settings, uri: str, kb: str, pid: int, chunk_tokens: int = 64, chunk_overlap: int = 8
) -> tuple[float, dict, int]:
    """Publish a request, wait for SUCCEEDED; seconds, summary, and the service's peak RSS."""
    job_id = f"bench-rag-{uuid.uuid4().hex[:10]}"
    params = RagParameters(kb=kb, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
    event = JobRequested(
        job_id=job_id, training_type="EXTERNAL_RAG", datasets=(DatasetRef(uri=uri),),
        parameters=params,
    )  # fmt: skip
    peak, stop = [0], threading.Event()

    def sample() -> None:
        proc = psutil.Process(pid)
        while not stop.wait(0.05):
            peak[0] = max(peak[0], proc.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    async with JobEnds(settings.postgres_dsn) as ends:
        started = time.perf_counter()
        await publish_raw(
            settings.kafka.bootstrap_servers, JOB_REQUESTED, event.to_bytes(), key=job_id.encode()
        )
        row = await ends.ended(job_id, timeout=900)
        elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    if row["state"] != "SUCCEEDED":
        raise RuntimeError(f"bench ingest ended {row['state']}: {row['error']}")
    return elapsed, row["result"]["summary"], peak[0]


def raw_encode_setup(texts_jsonl: bytes) -> tuple[Any, list[str]]:
    """The baseline's model (as the service loads it) and the same records' chunks, warm."""
    from lorag_rag.adapters.embedder import EmbedderCache

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    embedder = EmbedderCache().get("all-MiniLM-L6-v2")
    texts = [c.text for c in chunks_of(texts_jsonl, embedder)]
    embedder.model.encode(texts[:64], batch_size=64)  # warm up, as the service is warm
    return embedder, texts


def chunks_of(texts_jsonl: bytes, embedder: Any) -> list[Any]:
    """The chunks the service cuts the records into (64 tokens, 8 overlapping)."""
    from lorag_rag.domain.chunking import chunk_documents
    from lorag_rag.domain.formats import ReadOptions, parse_file

    docs = parse_file("data.jsonl", texts_jsonl, ReadOptions()).documents
    return chunk_documents(docs, embedder, 64, 8)


def embedded_write(chunks: list[Any], vectors: Any, path: Path) -> tuple[float, float]:
    """The ingest's writes alone: the chunks' vectors stored in an embedded Chroma as its writer
    stores them (calls of WRITE_CHUNKS, the same metadata), in process. Returns the seconds the
    writes took and the seconds a thread that wakes every millisecond was kept from running
    meanwhile: the GIL the writes held, during which an encoder in the process stands still."""
    from lorag_rag.adapters.chroma_store import ChromaStore
    from lorag_rag.config import ChromaSettings
    from lorag_rag.embedding import WRITE_CHUNKS

    store, kb = ChromaStore(ChromaSettings(path=path)), "write-floor"
    store.upsert(kb, chunks[:8], vectors[:8], 1)  # the collection exists, as in a warm service
    kept, done = [0.0], threading.Event()

    def waker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            kept[0] += max(0.0, now - last - 0.005)  # late by more than a scheduler's slack
            last = now

    watcher = threading.Thread(target=waker, daemon=True)
    watcher.start()
    started = time.perf_counter()
    for i in range(0, len(chunks), WRITE_CHUNKS):
        store.upsert(kb, chunks[i : i + WRITE_CHUNKS], vectors[i : i + WRITE_CHUNKS], 2)
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    return seconds, kept[0]


def raw_encode(embedder: Any, texts: list[str]) -> tuple[float, float, Any]:
    """Baseline: a bare SentenceTransformer.encode of the chunks; seconds, CPU seconds and the
    vectors."""
    cpu, started = cpu_seconds(os.getpid()), time.perf_counter()
    vectors = embedder.model.encode(texts, batch_size=64)
    return time.perf_counter() - started, cpu_seconds(os.getpid()) - cpu, vectors


def raw_lanes_encode(embedder: Any, texts: list[str], batch: int = 64) -> float:
    """The chunks encoded as the service's lanes encode them, in process: a thread per lane, each
    running torch on one core and taking the next batch of `batch` chunks; the seconds."""
    batches = queue.SimpleQueue()
    for start in range(0, len(texts), batch):
        batches.put(texts[start : start + batch])

    def lane() -> None:
        embedder.start_lane()
        while True:
            try:
                part = batches.get_nowait()
            except queue.Empty:
                return
            embedder.model.encode(part, batch_size=batch)

    lanes = [threading.Thread(target=lane) for _ in range(embedder.lanes)]
    started = time.perf_counter()
    for thread in lanes:
        thread.start()
    for thread in lanes:
        thread.join()
    return time.perf_counter() - started


def upload(objects: ObjectStore, files: dict[str, bytes]) -> str:
    """The files under a fresh prefix of the datasets bucket; the dataset's URI."""
    prefix = f"bench-rag-{uuid.uuid4().hex[:8]}"
    for name, data in files.items():
        objects.put_bytes("lorag-datasets", f"{prefix}/{name}", data)
    return f"s3://lorag-datasets/{prefix}/"


async def api_latencies(port: int, secret: Any, kb: str) -> list[float]:
    """Milliseconds of top-5 queries through the rag-service's API, one at a time."""
    from lorag_api.rag import Query, RagClient

    client = RagClient(f"http://127.0.0.1:{port}", secret)
    out = []
    try:
        for i in range(QUERIES + 20):
            body = Query(question=QUESTIONS[i % len(QUESTIONS)], top_k=5)
            started = time.perf_counter()
            hits = await client.query("default", kb, body)
            if i >= 20:  # the first ones warm the connection and the collection
                out.append((time.perf_counter() - started) * 1000)
            assert hits.hits, f"no hits for {body.question!r}"
    finally:
        await client.close()
    return out


def in_process_latencies(embedder: Any, chroma: Path, kb: str, version: int) -> list[float]:
    """The same queries in this process: embed the question, then Chroma's top 5."""
    from lorag_rag.adapters.chroma_store import ChromaStore
    from lorag_rag.config import ChromaSettings

    store, out = ChromaStore(ChromaSettings(path=chroma)), []
    for i in range(QUERIES + 20):
        started = time.perf_counter()
        store.query(kb, embedder.encode_one(QUESTIONS[i % len(QUESTIONS)]), 5, version)
        if i >= 20:
            out.append((time.perf_counter() - started) * 1000)
    return out


async def run(settings: Settings, work: Path) -> list[Figure]:
    env = {"LORAG_CHROMA_PATH": str(work / "chroma"), "LORAG_RAG_EMBED_BATCH_SIZE": "64"}
    tracker = await asyncio.to_thread(start_service, "lorag_migration", work / "logs")
    rag = await asyncio.to_thread(start_service, "lorag_rag", work / "logs", **env)
    try:
        objects = ObjectStore.from_settings(settings.s3)
        data = dataset()
        uri, kb = upload(objects, {"data.jsonl": data}), f"bench-{uuid.uuid4().hex[:6]}"
        idle_rss = psutil.Process(rag.process.pid).memory_info().rss
        # The service's first job after start pays costs a running service has paid already
        # (the raw baseline below is warmed up too): a warm-up ingest of other records, into a
        # KB of its own, goes first. Its rate is in the figure line.
        warm_uri = upload(objects, {"data.jsonl": dataset(first=RECORDS)})
        warm_s, warm, _ = await ingest(
            settings, warm_uri, f"bench-warm-{uuid.uuid4().hex[:6]}", rag.process.pid
        )
        embedder, texts = await asyncio.to_thread(raw_encode_setup, data)
        # The baseline brackets the ingest, one encode just before and one just after: this
        # machine's speed drifts by tens of percent over minutes.
        before = await asyncio.to_thread(raw_encode, embedder, texts)
        cpu = cpu_seconds(rag.process.pid)
        first_s, first, peak = await ingest(settings, uri, kb, rag.process.pid)
        first_cpu = cpu_seconds(rag.process.pid) - cpu
        after = await asyncio.to_thread(raw_encode, embedder, texts)
        lanes_s = await asyncio.to_thread(raw_lanes_encode, embedder, texts)
        again_s, again, _ = await ingest(settings, uri, kb, rag.process.pid)
        stdlib = await asyncio.to_thread(corpus, 10**9)
        uri, big = upload(objects, stdlib), f"bench-stdlib-{uuid.uuid4().hex[:6]}"
        big_s, big_first, _ = await ingest(settings, uri, big, rag.process.pid, **STDLIB_PARAMS)
        big_again_s, big_again, _ = await ingest(
            settings, uri, big, rag.process.pid, **STDLIB_PARAMS
        )
        api = await api_latencies(rag.port, settings.service_secret, big)
    finally:
        await asyncio.to_thread(rag.stop)
        await asyncio.to_thread(tracker.stop)
    # The same chunks (texts[i] is chunks[i].text) and the vectors the raw encode made of them.
    chunks = chunks_of(data, embedder)
    write_s, write_held_s = await asyncio.to_thread(embedded_write, chunks, after[2], work / "w")
    raw_s, raw_cpu = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
    raw_rate, raw_cores = len(texts) / raw_s, raw_cpu / raw_s
    local = await asyncio.to_thread(
        in_process_latencies, embedder, work / "chroma", big, big_again["version"]
    )
    # Targets: issue 4 (ingest >= 0.9 of raw encode; unchanged re-ingest >= 20x faster; query
    # top-5 over 10,000 chunks p50 <= 15 ms, p99 <= 50 ms), restated in issue 17 with >= 50x on
    # 10k chunks and the query through the service's API on a KB it built from real text. Peak
    # RSS: issue 4 asks for it without a target.
    figures = [
        figure("rag_ingest.chunks_per_s", first["chunks"] / first_s, "chunks/s",
               baseline=raw_rate,
               baseline_is="raw SentenceTransformer.encode, same chunks, before and after",
               target=at_least(0.9, of="ratio", issue=4), n=first["chunks"],
               dtype=embedder.dtype, raw_before_s=round(before[0], 2),
               raw_after_s=round(after[0], 2),
               first_job_after_start_chunks_per_s=round(warm["chunks"] / warm_s, 1)),
        # The service encodes in lanes (lorag_rag.embedding): against the same chunks encoded
        # that way in process, the ratio says what the service's own work costs the encoding.
        figure("rag_ingest.vs_raw_lanes", first["chunks"] / first_s, "chunks/s",
               baseline=len(texts) / lanes_s,
               baseline_is="the same chunks encoded in the service's lanes, in process",
               target=None, lanes=embedder.lanes, raw_lanes_s=round(lanes_s, 2)),
        # The ratio the ingest could reach if it kept every core busy all along, when the raw
        # encode alone already keeps them busy (raw_encode_cores near the core count): the raw
        # encode's seconds over the seconds the service's CPU time fills on these cores. Below
        # 0.9, the target cannot be met here without cutting the service's own CPU.
        figure("rag_ingest.core_bound_ratio",
               raw_s * CORES / first_cpu, "ratio",
               target=None, service_cpu_s=round(first_cpu, 2), cores=CORES,
               raw_encode_s=round(raw_s, 2),
               raw_encode_cores=round(raw_cores, 2)),
        # The ratio (to the bare encode) an ingest that stores in an embedded Chroma could reach
        # if chunking, the job's bookkeeping and every other cost were free: it encodes in lanes
        # (lanes_s), and embedded Chroma holds the GIL for a whole upsert (write_held_gil_s, the
        # time a thread was kept waiting, reads about all of write_s), so no encoding goes on in
        # the process while the same writes run. Below 0.9, the target cannot be met with the
        # local default's embedded Chroma; a Chroma server (as the Kubernetes manifests deploy)
        # writes in its own process.
        figure("rag_ingest.embedded_chroma_ceiling", raw_s / (lanes_s + write_s), "ratio",
               target=None, raw_encode_s=round(raw_s, 2), raw_lanes_s=round(lanes_s, 2),
               write_s=round(write_s, 3),
               write_held_gil_s=round(write_held_s, 3), n=first["chunks"]),
        figure("rag_reingest_unchanged.seconds", again_s, "s", baseline=first_s,
               baseline_is="first ingest of the same dataset", ratio=first_s / again_s,
               ratio_is="baseline / value (times faster)",
               target=at_least(20, of="ratio", issue=4), n=again["unchanged"]),
        figure("rag_reingest_unchanged_10k.seconds", big_again_s, "s", baseline=big_s,
               baseline_is="first ingest of the stdlib docstrings", ratio=big_s / big_again_s,
               ratio_is="baseline / value (times faster)",
               target=at_least(50, of="ratio", issue=17), n=big_again["unchanged"],
               files=big_first["sources"], files_kept=big_again.get("files_kept"),
               files_unread=big_again.get("files_unread")),
    ]  # fmt: skip
    for q, name, limit in ((0.5, "p50", 15), (0.99, "p99", 50)):
        figures.append(
            figure(f"rag_query_api_top5_10k.{name}_ms", percentile(api, q), "ms",
                   baseline=percentile(local, q),
                   baseline_is="embed + Chroma top 5 in process, same KB and questions",
                   target=at_most(limit, issue=17), n=len(api), chunks=big_first["chunks"])
        )  # fmt: skip
    figures.append(
        figure("rag_ingest.peak_rss_mib", peak / 2**20, "MiB", baseline=idle_rss / 2**20,
               baseline_is="service RSS when idle and ready", target=None, n=first["chunks"])
    )  # fmt: skip
    return figures
