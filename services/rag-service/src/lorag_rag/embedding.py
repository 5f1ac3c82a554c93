"""Chunking, encoding and storing as a pipeline of threads joined by bounded queues.

A producer thread tokenises documents into chunks and hands the ones to embed to the encoders in
batches of the configured size, sorted by length within a window (less padding per batch). The
encoder threads run the model back to back; a writer thread stores each encoded batch in Chroma.

The encoders are lanes: as many threads as the cores torch would use, each running torch on one
core, on batches of their own. One encoder running torch on every core synchronises its OpenMP
team at each operation, so whenever one member waits for a core (on a host shared with Kafka,
Postgres and the service's own threads) the others wait with it; lanes never wait for each other.
On 2 cores, `python -m bench.profile_rag_job --jobs 3` read ingest/raw-encode ratios of 0.87-1.02
(median 0.97; 196-248 chunks/s) with two lanes and 0.67-0.94 (median 0.75; 166-227 chunks/s) with
one encoder (LORAG_RAG_ENCODE_LANES=1), two alternating rounds of each.

The event loop only watches: it reports progress and turns a cancel into a stop, so neither a
progress round trip nor a Chroma write ever keeps the model waiting.

Every stored batch survives a crash: a resumed attempt finds those ids and skips them.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lorag_core.domain.job_state import JobState
from lorag_core.service.worker import JobContext
from lorag_rag.adapters.chroma_store import ChromaStore
from lorag_rag.adapters.embedder import Embedder
from lorag_rag.domain.chunking import chunk_slices
from lorag_rag.domain.documents import Chunk, Document

EMBED_START, EMBED_END = 10.0, 90.0  # share of the job's percent bar
SORT_WINDOW = 8  # batches sorted by length together: the tail of a window pads the least
QUEUE_BATCHES = 4  # batches waiting between two stages: bounds memory, keeps the model fed
WRITE_CHUNKS = 256  # encoded chunks the writer stores in one call ...
WRITE_EVERY_S = 0.5  # ... or fewer, once the first of them waited this long
CHUNK_CALL = 64  # documents tokenised per call: the encoder starts after the first ones
WATCH_S = 0.05  # how often the event loop looks at the pipeline (progress, cancel)
_END = None  # what a stage passes on when its input is exhausted
_NOTHING = object()  # no item came within WATCH_S


@dataclass
class Pipeline:
    """What the threads share: counters, the chunks seen, the first error, the stop flag."""

    documents: int
    chunks: list[Chunk] = field(default_factory=list)
    documents_done: int = 0
    queued: int = 0  # chunks handed to the encoders
    chunking_done: bool = False
    lanes_running: int = 1  # encoder threads that have not yet met the end of their input
    stored: int = 0
    percent: float = 0.0  # the highest reported: the estimate below moves both ways
    error: BaseException | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lane_done(self) -> bool:
        """Count an encoder lane out; True for the last one (it passes the end on)."""
        with self.lock:
            self.lanes_running -= 1
            return self.lanes_running == 0

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stop.set()

    def total_estimate(self) -> int:
        """Chunks to embed: exact once chunking ended, else extrapolated from documents read."""
        if self.chunking_done or not self.documents_done:
            return max(self.queued, 1)
        return max(self.queued, round(self.queued * self.documents / self.documents_done), 1)


def _put(pipe: Pipeline, out: queue.Queue[Any], item: Any) -> bool:
    """Blocks while the next stage is busy; False once the pipeline stopped."""
    while not pipe.stop.is_set():
        try:
            out.put(item, timeout=WATCH_S)
            return True
        except queue.Full:
            continue
    return False


def _get(pipe: Pipeline, source: queue.Queue[Any]) -> Any:
    """The next item, or _END once the pipeline stopped."""
    while not pipe.stop.is_set():
        try:
            return source.get(timeout=WATCH_S)
        except queue.Empty:
            continue
    return _END


def _produce(
    pipe: Pipeline, out: queue.Queue[Any], documents: Sequence[Document], tokenizer: Embedder,
    size: int, overlap: int, skip: Callable[[str], bool], batch_size: int,
) -> None:  # fmt: skip
    window: list[Chunk] = []

    def flush(final: bool) -> bool:
        """Hand on the window's full batches (all of it when final), shortest first."""
        window.sort(key=lambda c: len(c.text))
        cut = len(window) if final else len(window) - len(window) % batch_size
        for start in range(0, cut, batch_size):
            batch = window[start : min(start + batch_size, cut)]
            pipe.queued += len(batch)
            if not _put(pipe, out, batch):
                return False
        del window[:cut]
        return True

    try:
        slices = chunk_slices(documents, tokenizer, size, overlap, CHUNK_CALL)
        for documents_done, chunks in slices:
            pipe.chunks.extend(chunks)
            window.extend(c for c in chunks if not skip(c.id))
            pipe.documents_done = documents_done
            # a full window, or a starving encoder: it never waits for a whole window
            starving = out.empty() and len(window) >= batch_size
            if (len(window) >= SORT_WINDOW * batch_size or starving) and not flush(False):
                return
            if pipe.stop.is_set():
                return
        pipe.chunking_done = True
        if flush(True):
            _put(pipe, out, _END)
    except BaseException as exc:  # handed to the event loop, which raises it
        pipe.fail(exc)


def _encode(
    pipe: Pipeline, source: queue.Queue[Any], out: queue.Queue[Any], embedder: Embedder,
    batch_size: int, lanes: int,
) -> None:  # fmt: skip
    try:
        if lanes > 1:
            embedder.start_lane()
        while (batch := _get(pipe, source)) is not _END:
            vectors = embedder.encode([c.text for c in batch], batch_size)
            if not _put(pipe, out, (batch, vectors)):
                return
        _put(pipe, source, _END)  # for the lanes still encoding
        if pipe.lane_done():
            _put(pipe, out, _END)
    except BaseException as exc:
        pipe.fail(exc)


def _write(
    pipe: Pipeline, source: queue.Queue[Any], store: ChromaStore, kb: str, version: int
) -> None:
    """Store encoded batches, WRITE_CHUNKS at a time or whatever waited WRITE_EVERY_S.

    Chroma's embedded client holds the GIL for a whole upsert (its commit included), so the
    encoder's Python glue waits while one runs: writes do not overlap encoding, and fewer,
    larger ones hold it for less in all (1,500 chunks: 1.8-2.7 s in calls of 64, 1.1-1.6 s in
    calls of 256). A crash loses at most what waited: a resumed attempt encodes it again.
    """
    pending: list[tuple[list[Chunk], Any]] = []
    waiting, since = 0, 0.0

    def flush() -> None:
        nonlocal waiting
        batch = [chunk for chunks, _ in pending for chunk in chunks]
        store.upsert(kb, batch, np.concatenate([np.asarray(v) for _, v in pending]), version)
        pipe.stored += len(batch)
        pending.clear()
        waiting = 0

    try:
        while not pipe.stop.is_set():
            try:
                item = source.get(timeout=WATCH_S)
            except queue.Empty:
                item = _NOTHING
            if item is _END:
                if pending:
                    flush()
                return
            if item is not _NOTHING:
                since = since if pending else time.monotonic()
                pending.append(item)
                waiting += len(item[0])
            if pending and (waiting >= WRITE_CHUNKS or time.monotonic() - since >= WRITE_EVERY_S):
                flush()
    except BaseException as exc:
        pipe.fail(exc)


@dataclass(frozen=True)
class Embedded:
    """Every chunk the documents cut into, and how many of them were encoded, how fast."""

    chunks: list[Chunk]
    embedded: int
    chunks_per_s: float


async def chunk_embed_store(
    ctx: JobContext, embedder: Embedder, store: ChromaStore, kb: str,
    documents: Sequence[Document], chunk_tokens: int, chunk_overlap: int,
    skip: Callable[[str], bool], version: int, batch_size: int, lanes: int = 1,
) -> Embedded:  # fmt: skip
    """Chunk the documents, and encode (in `lanes` threads) and store each chunk `skip` does not
    name.

    Raises JobCancelled within a batch of a cancel, once every thread has stopped; a failure
    in any stage stops the others and is raised here.
    """
    pipe = Pipeline(documents=len(documents), lanes_running=lanes)
    to_encode: queue.Queue[Any] = queue.Queue(QUEUE_BATCHES)
    to_write: queue.Queue[Any] = queue.Queue(QUEUE_BATCHES)
    threads = [
        threading.Thread(target=_produce, name=f"chunk-{kb}", daemon=True, args=(
            pipe, to_encode, documents, embedder, chunk_tokens, chunk_overlap, skip, batch_size,
        )),
        *(threading.Thread(target=_encode, name=f"encode-{kb}-{lane}", daemon=True,
                           args=(pipe, to_encode, to_write, embedder, batch_size, lanes))
          for lane in range(lanes)),
        threading.Thread(target=_write, name=f"write-{kb}", daemon=True,
                         args=(pipe, to_write, store, kb, version)),
    ]  # fmt: skip
    started = time.monotonic()
    for thread in threads:
        thread.start()
    writer = threads[-1]
    try:
        while writer.is_alive():
            if ctx.cancelled.is_set():
                pipe.stop.set()
                break
            await _report(ctx, pipe, started, force=False)
            await asyncio.sleep(WATCH_S)
    finally:
        pipe.stop.set()  # a no-op after a normal end: every stage has passed its end on
        # never leave a write running: the caller may delete what this attempt stored
        await asyncio.to_thread(_join, threads)
    if pipe.error is not None:
        raise pipe.error
    await ctx.check_cancelled()
    rate = pipe.stored / max(time.monotonic() - started, 1e-6) if pipe.stored else 0.0
    if pipe.stored:
        await _report(ctx, pipe, started, force=True)  # the final rate is always recorded
    return Embedded(pipe.chunks, pipe.stored, rate)


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join()


async def _report(ctx: JobContext, pipe: Pipeline, started: float, *, force: bool) -> None:
    done = pipe.stored
    if not done and not force:
        return
    total = pipe.total_estimate()
    rate = done / max(time.monotonic() - started, 1e-6)
    # Documents early in a dataset may cut into more chunks or fewer than the rest, so the
    # extrapolated total moves both ways; the job's progress never goes back.
    pipe.percent = max(pipe.percent, EMBED_START + (EMBED_END - EMBED_START) * min(done / total, 1))
    await ctx.report(
        JobState.RUNNING,
        stage="embedding",
        percent=pipe.percent,
        eta_seconds=max(total - done, 0) / rate if rate else None,
        metrics={"chunks_per_s": rate, "chunks_done": done, "chunks_total": total},
        force=force,
    )
