"""An EXTERNAL_RAG ingest: validate, chunk, embed (resumable), evaluate, commit a KB version."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from contextlib import aclosing
from dataclasses import replace
from typing import Any

from lorag_core.contracts import ArtifactRef, JobResult, RagParameters
from lorag_core.domain.job_state import JobState
from lorag_core.metrics import RAG_CHUNKS, RAG_CHUNKS_PER_S
from lorag_core.service.worker import JobCancelled, JobContext, JobFailed
from lorag_core.telemetry import stage_span
from lorag_rag.adapters import registry
from lorag_rag.adapters.chroma_store import collection_name
from lorag_rag.adapters.embedder import Embedder
from lorag_rag.deps import RagDeps
from lorag_rag.domain.documents import Chunk, DatasetError
from lorag_rag.domain.formats import ReadOptions
from lorag_rag.domain.manifest import FileEntry, settings_digest
from lorag_rag.domain.plan import IngestPlan, StoredChunk, plan_ingest
from lorag_rag.embedding import chunk_embed_store
from lorag_rag.loading import (
    LoadedDataset,
    eval_uri,
    keep_listed,
    list_dataset,
    parse_one,
    read_eval_pairs,
    read_in_order,
)
from lorag_rag.retrieval import evaluate

KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def kb_name(ctx: JobContext, params: RagParameters) -> str:
    name = params.kb or ctx.request.minion_id or ctx.job_id
    if not KB_NAME.match(name):
        raise JobFailed("KB_NAME_INVALID", f"{name!r} is not a knowledge-base name; set param kb")
    return name


def read_settings(deps: RagDeps, params: RagParameters) -> str:
    """Digest of what turns a file's bytes into vectors: a change re-reads every file."""
    return settings_digest(
        model=params.embedding_model, chunk_tokens=params.chunk_tokens,
        chunk_overlap=params.chunk_overlap, text_field=params.text_field,
        question_field=params.question_field, answer_field=params.answer_field,
        max_file_bytes=deps.settings.max_file_bytes, max_line_bytes=deps.settings.max_line_bytes,
    )  # fmt: skip


async def load(
    ctx: JobContext, deps: RagDeps, params: RagParameters, manifest: dict[str, FileEntry]
) -> LoadedDataset:
    """Read and validate every file; bad files fail the job or are skipped, per on_bad_file.

    Files unchanged since the live version (same bytes, same settings) are kept unparsed, and
    unread when the object store's listing already shows their bytes unchanged.
    """
    assert deps.reader is not None
    opts = ReadOptions(
        params.text_field, params.question_field, params.answer_field,
        deps.settings.max_file_bytes, deps.settings.max_line_bytes,
    )  # fmt: skip
    refs = ctx.request.datasets
    evals = eval_uri(params.eval_file, refs[0].uri) if params.eval_file else None
    files = await asyncio.to_thread(list_dataset, deps.reader, refs, evals)
    out, settings = LoadedDataset(), read_settings(deps, params)
    unread = [(f, hint) for f, hint in files if not keep_listed(f, hint, out, manifest, settings)]
    async with aclosing(read_in_order(deps.reader, [file for file, _ in unread])) as reads:
        for number, (file, hint) in enumerate(unread, 1):
            data = await anext(reads)
            await ctx.check_cancelled()
            await asyncio.to_thread(parse_one, file, data, hint, opts, out, manifest, settings)
            await ctx.report(stage="validating", percent=5.0 * number / len(unread))
    if out.bad_files and all(b.code == "FILE_EMPTY" for b in out.bad_files) and not out.has_text():
        raise DatasetError("DATASET_EMPTY", f"the dataset's {len(files)} file(s) hold no text")
    if out.bad_files and (params.on_bad_file == "fail" or not out.has_text()):
        listing = "; ".join(f"{b.source}: {b.code}: {b.message}" for b in out.bad_files)
        code = out.bad_files[0].code if len(out.bad_files) == 1 else "DATASET_BAD_FILES"
        raise DatasetError(code, f"{len(out.bad_files)} bad file(s) of {len(files)}: {listing}")
    if not out.has_text():
        raise DatasetError("DATASET_EMPTY", "the dataset holds no text")
    if evals:
        out.pairs = await asyncio.to_thread(read_eval_pairs, deps.reader, evals, opts)
    return out


async def ingest(ctx: JobContext, deps: RagDeps) -> JobResult:
    params = ctx.request.effective_parameters
    assert isinstance(params, RagParameters)
    kb = kb_name(ctx, params)
    async with ctx.runtime.db.connection() as conn:
        done = await registry.committed_by(conn, ctx.job_id)
        row = await registry.get(conn, kb)
        manifest = await registry.manifest(conn, kb) if row else {}
    if done is not None:  # committed before a crash; only the SUCCEEDED event was missing
        return result(kb, done["summary"])
    if row is not None:
        check_lock(row, params, ctx.request.owner)
    with stage_span("rag.validating", {"lorag.files": len(ctx.request.datasets)}) as span:
        data = await load(ctx, deps, params, manifest)
        span.set_attributes({"lorag.documents": len(data.documents), "lorag.files_kept":
                             len(data.kept), "lorag.files_unread": data.unread,
                             "lorag.bad_files": len(data.bad_files)})  # fmt: skip
    await ctx.report(JobState.RUNNING, stage="chunking", percent=5.0, force=True)
    embedder: Embedder | None = None
    # Chunks are cut inside the embedding stage's pipeline (a producer thread feeding the
    # encoder), so this span prepares it: the KB claimed, the chunks it already stores read.
    chunking = {"lorag.kb": kb, "lorag.chunk_tokens": params.chunk_tokens}
    with stage_span("rag.chunking", chunking) as span:
        if data.documents or row is None:  # only new or changed files meet the model
            embedder = await asyncio.to_thread(deps.embedders.get, params.embedding_model)
            async with ctx.runtime.db.connection() as conn:
                claimed = await registry.claim(
                    conn, kb, ctx.request.owner, collection_name(kb), embedder.name,
                    embedder.dimension,
                )  # fmt: skip
            check_lock(claimed, params, ctx.request.owner)
            row = row or claimed
        assert row is not None
        live = int(row["version"])
        stored: list[StoredChunk] | None = None
        if data.documents:
            stored = await asyncio.to_thread(deps.store.stored, kb)
            span.set_attribute("lorag.stored_chunks", len(stored))
    chunks: list[Chunk] = []
    rate = 0.0
    try:
        if data.documents:
            assert embedder is not None and stored is not None
            skip = known_ids(stored, live, data.kept)
            with stage_span("rag.embedding", {"lorag.documents": len(data.documents)}) as span:
                embedded = await chunk_embed_store(
                    ctx, embedder, deps.store, kb, data.documents, params.chunk_tokens,
                    params.chunk_overlap, skip.__contains__, live + 1,
                    deps.settings.embed_batch_size, embedder.lanes,
                )  # fmt: skip
                chunks, rate = embedded.chunks, embedded.chunks_per_s
                span.set_attributes(
                    {"lorag.chunks": len(chunks), "lorag.embedded": embedded.embedded,
                     "lorag.chunks_per_s": round(rate, 1)}
                )  # fmt: skip
            if embedded.embedded:
                RAG_CHUNKS.inc(embedded.embedded)
                RAG_CHUNKS_PER_S.set(rate)
            plan = plan_ingest(chunks, stored, live, data.kept)
        else:
            plan = await plan_changes(deps, kb, chunks, data, manifest, live)
        await ctx.check_cancelled()
    except JobCancelled:
        await discard(ctx, deps, kb, live)
        raise
    await ctx.report(stage="indexing", percent=90.0, force=True)
    with stage_span("rag.indexing", {"lorag.deleted": len(plan.to_delete)}):
        return await _index(ctx, deps, kb, row, embedder, data, plan, chunks, rate)


async def _index(ctx: JobContext, deps: RagDeps, kb: str, row: dict[str, Any],
                 embedder: Embedder | None, data: LoadedDataset, plan: IngestPlan,
                 chunks: list[Chunk], rate: float) -> JobResult:  # fmt: skip
    """Drop what the dataset no longer holds, evaluate, and commit the new version."""
    params = ctx.request.effective_parameters
    assert isinstance(params, RagParameters)
    live = int(row["version"])
    await asyncio.to_thread(deps.store.delete, kb, plan.to_delete)
    summary: dict[str, Any] = {
        "kb": kb, "embedding_model": row["embedding_model"], "chunks": len(chunks) + plan.kept,
        "sources": data.sources, "added": plan.added, "updated": plan.updated,
        "deleted": plan.deleted, "unchanged": plan.unchanged, "embedded": len(plan.to_embed),
        "resumed": plan.resumed, "files_kept": len(data.kept), "files_unread": data.unread,
        "chunks_per_s": round(rate, 1),
        "attempt": ctx.attempt, "bad_files": len(data.bad_files),
        "bad_file_list": json.dumps([f"{b.source}: {b.code}" for b in data.bad_files]),
    }  # fmt: skip
    if data.pairs:
        if embedder is None:
            embedder = await asyncio.to_thread(deps.embedders.get, params.embedding_model)
        quality = await asyncio.to_thread(
            evaluate, deps, kb, embedder, data.pairs, live + 1, deps.settings.eval_k
        )
        summary |= {"hit_rate": round(quality.hit_rate, 4), "mrr": round(quality.mrr, 4),
                    "eval_pairs": quality.pairs, "eval_k": quality.k}  # fmt: skip
    try:
        async with ctx.runtime.db.connection() as conn:
            summary["version"] = await registry.commit(
                conn, kb, live, ctx.job_id, summary, manifest_of(data, chunks)
            )
        deps.kb_rows.forget(kb)  # the next query here sees the new version, notice or not
    except registry.KbConflict:
        raise JobFailed(
            "KB_CONFLICT", f"another job committed a version of {kb!r} meanwhile", retryable=True
        ) from None
    return result(kb, summary)


async def plan_changes(
    deps: RagDeps, kb: str, chunks: list[Chunk], data: LoadedDataset,
    manifest: dict[str, FileEntry], live: int,
) -> IngestPlan:  # fmt: skip
    """What to embed and delete; without reading the store when every live file is kept as is."""
    if live > 0 and not chunks and data.kept == set(manifest):
        # Only an interrupted attempt's leftovers (above the live version) can need removing.
        await asyncio.to_thread(deps.store.delete_above, kb, live)
        held = sum(manifest[s].chunks for s in data.kept)
        return IngestPlan([], 0, [], 0, 0, 0, unchanged=held, kept=held)
    stored = await asyncio.to_thread(deps.store.stored, kb)
    return plan_ingest(chunks, stored, live, data.kept)


def known_ids(stored: list[StoredChunk], live: int, kept: set[str]) -> set[str]:
    """Ids not to embed again: committed (outside kept files) or stored by an earlier attempt.

    The same rule as `plan_ingest`'s to_embed, applied chunk by chunk as chunking goes.
    """
    return {s.id for s in stored if s.version > live or s.source not in kept}


def manifest_of(data: LoadedDataset, chunks: list[Chunk]) -> list[FileEntry]:
    """The new live version's files: kept ones as they were, read ones with their chunk counts."""
    counts = Counter(c.source for c in chunks)
    return [
        f if f.source in data.kept else replace(f, chunks=counts[f.source])
        for f in data.files.values()
    ]


def check_lock(row: dict[str, Any], params: RagParameters, owner: str) -> None:
    if row["owner"] != owner:
        raise JobFailed("KB_OWNED_BY_OTHER", f"knowledge base {row['name']!r} has another owner")
    if row["embedding_model"] != params.embedding_model:
        raise JobFailed(
            "EMBEDDING_MODEL_LOCKED",
            f"knowledge base {row['name']!r} is embedded with {row['embedding_model']!r}; "
            f"it cannot take {params.embedding_model!r}. Use a new kb name for another model.",
        )


async def discard(ctx: JobContext, deps: RagDeps, kb: str, live: int) -> None:
    """Remove what this ingest wrote; shielded so a second cancel cannot interrupt it."""
    await asyncio.shield(asyncio.to_thread(deps.store.delete_above, kb, live))
    async with ctx.runtime.db.connection() as conn:
        await registry.forget_if_uncommitted(conn, kb)


def result(kb: str, summary: dict[str, Any]) -> JobResult:
    uri = f"chroma://{collection_name(kb)}?version={summary.get('version')}"
    return JobResult(artifacts=(ArtifactRef(kind="knowledge_base", uri=uri),), summary=summary)
