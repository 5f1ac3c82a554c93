"""Embedding a plan's chunks in batches that are stored as they go, with progress and cancel."""

from __future__ import annotations

import asyncio
import time

from lorag_core.domain.job_state import JobState
from lorag_core.service.worker import JobContext
from lorag_rag.adapters.chroma_store import ChromaStore
from lorag_rag.adapters.embedder import Embedder
from lorag_rag.domain.documents import Chunk

EMBED_START, EMBED_END = 10.0, 90.0  # share of the job's percent bar


async def embed_and_store(
    ctx: JobContext, embedder: Embedder, store: ChromaStore, kb: str, chunks: list[Chunk],
    version: int, batch_size: int,
) -> float:  # fmt: skip
    """Encode batch n+1 while batch n is written; returns chunks per second.

    Every stored batch survives a crash: a resumed attempt finds those ids and skips them.
    """
    started, done = time.monotonic(), 0
    writing: asyncio.Task[None] | None = None
    try:
        for start in range(0, len(chunks), batch_size):
            await ctx.check_cancelled()  # between batches: a cancel stops within one batch
            batch = chunks[start : start + batch_size]
            vectors = await asyncio.to_thread(embedder.encode, [c.text for c in batch], batch_size)
            if writing is not None:
                await writing
            writing = asyncio.create_task(
                asyncio.to_thread(store.upsert, kb, batch, vectors, version)
            )
            done += len(batch)
            rate = done / max(time.monotonic() - started, 1e-6)
            await ctx.report(
                JobState.RUNNING,
                stage="embedding",
                percent=EMBED_START + (EMBED_END - EMBED_START) * done / len(chunks),
                eta_seconds=(len(chunks) - done) / rate,
                metrics={"chunks_per_s": rate, "chunks_done": done, "chunks_total": len(chunks)},
                force=done == len(chunks),  # the final rate is always recorded
            )
        if writing is not None:
            await writing
    finally:
        if writing is not None and not writing.done():
            await asyncio.gather(writing, return_exceptions=True)  # never leave a write running
    return done / max(time.monotonic() - started, 1e-6) if chunks else 0.0
