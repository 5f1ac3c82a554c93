"""rag-service ingest pipeline: chunking, encoding and Chroma writes on their own threads."""

import asyncio
import threading
import time

import numpy as np
import pytest

from lorag_core.service.worker import JobCancelled
from lorag_rag.domain.chunking import chunk_documents
from lorag_rag.domain.documents import Document
from lorag_rag.embedding import WRITE_EVERY_S, chunk_embed_store
from tests.unit.test_rag_domain import WordTokenizer


class Embedder(WordTokenizer):
    """Words as tokens; vectors of zeros, optionally slow, recording each batch's size."""

    def __init__(self, delay: float = 0.0, fail_on_batch: int | None = None) -> None:
        self.delay, self.batches, self.lanes, self.by_thread = delay, [], [], {}
        self.fail_on_batch = fail_on_batch

    def start_lane(self):
        self.lanes.append(threading.current_thread().name)

    def encode(self, texts, batch_size=64):
        time.sleep(self.delay)
        if self.fail_on_batch is not None and len(self.batches) >= self.fail_on_batch:
            raise RuntimeError("the model ran out of memory")
        self.batches.append(len(texts))
        name = threading.current_thread().name
        self.by_thread[name] = self.by_thread.get(name, 0) + 1
        return np.zeros((len(texts), 4), dtype=np.float32)


class Store:
    def __init__(self, fail_after: int | None = None) -> None:
        self.ids, self.versions, self.fail_after = [], set(), fail_after

    def upsert(self, kb, chunks, vectors, version):
        if self.fail_after is not None and len(self.ids) >= self.fail_after:
            raise RuntimeError("chroma is down")
        assert len(chunks) == len(vectors)
        self.ids += [c.id for c in chunks]
        self.versions.add(version)


class Ctx:
    job_id = "job-1"

    def __init__(self) -> None:
        self.cancelled, self.reports = asyncio.Event(), []

    async def report(self, state=None, **fields):
        self.reports.append(fields)

    async def check_cancelled(self):
        if self.cancelled.is_set():
            raise JobCancelled(self.job_id)


def documents(n: int = 300) -> list[Document]:
    return [
        Document(f"f{i % 7}.txt", f"record {i} " + "word " * (i % 11), part=str(i))
        for i in range(n)
    ]


def pipeline_threads() -> list[str]:
    return [
        t.name
        for t in threading.enumerate()
        if t.name.split("-")[0] in ("chunk", "encode", "write")
    ]


async def run(ctx, embedder, store, docs, skip=frozenset(), batch=16, lanes=1):
    return await chunk_embed_store(
        ctx,
        embedder,
        store,
        "kb",
        docs,
        4,
        1,
        skip.__contains__,
        2,
        batch,  # type: ignore[arg-type]
        lanes,
    )


async def test_every_chunk_not_skipped_is_encoded_and_stored_once_in_batches():
    docs, embedder, store, ctx = documents(), Embedder(), Store(), Ctx()
    expected = chunk_documents(docs, WordTokenizer(), 4, 1)
    skip = frozenset(c.id for c in expected[::5])
    done = await run(ctx, embedder, store, docs, skip)
    assert done.chunks == expected  # the same ids, positions and slots as one pass
    wanted = [c.id for c in expected if c.id not in skip]
    assert sorted(store.ids) == sorted(wanted) and len(set(store.ids)) == len(wanted)
    assert done.embedded == len(wanted) and store.versions == {2}
    assert max(embedder.batches) == 16 and sum(embedder.batches) == len(wanted)
    final = ctx.reports[-1]
    assert final["stage"] == "embedding" and final["percent"] == 90.0
    assert final["metrics"]["chunks_done"] == final["metrics"]["chunks_total"] == len(wanted)
    assert not pipeline_threads()


async def test_nothing_to_embed_reports_nothing():
    docs, ctx = documents(20), Ctx()
    skip = frozenset(c.id for c in chunk_documents(docs, WordTokenizer(), 4, 1))
    done = await run(ctx, Embedder(), Store(), docs, skip)
    assert done.embedded == 0 and len(done.chunks) == len(skip) and ctx.reports == []


async def test_a_failed_write_stops_every_stage_and_is_raised():
    with pytest.raises(RuntimeError, match="chroma is down"):
        await run(Ctx(), Embedder(), Store(fail_after=32), documents())
    assert not pipeline_threads()


async def test_a_cancel_stops_within_a_batch_and_leaves_no_thread_running():
    ctx, store = Ctx(), Store()
    task = asyncio.create_task(run(ctx, Embedder(delay=0.05), store, documents()))
    await asyncio.sleep(0.3 + WRITE_EVERY_S)  # the writer stores what waited that long
    ctx.cancelled.set()
    started = time.monotonic()
    with pytest.raises(JobCancelled):
        await task
    assert time.monotonic() - started < 1.0 and not pipeline_threads()
    assert 0 < len(store.ids) < len(chunk_documents(documents(), WordTokenizer(), 4, 1))


async def test_progress_never_goes_back_when_later_documents_cut_into_more_chunks():
    # short documents first: the total extrapolated from them is too low until the long ones come
    docs = [Document("a.txt", f"short {i}", part=str(i)) for i in range(150)] + [
        Document("b.txt", f"long {i} " + "word " * 60, part=str(i)) for i in range(150)
    ]
    ctx = Ctx()
    await run(ctx, Embedder(delay=0.01), Store(), docs)
    percents = [r["percent"] for r in ctx.reports if r.get("stage") == "embedding"]
    assert len(percents) > 5 and percents[-1] == 90.0
    assert percents == sorted(percents), percents


@pytest.mark.parametrize("lanes", [2, 3])
async def test_lanes_encode_every_chunk_once_and_all_of_them_take_part(lanes):
    docs, embedder, store, ctx = documents(), Embedder(delay=0.005), Store(), Ctx()
    expected = chunk_documents(docs, WordTokenizer(), 4, 1)
    done = await run(ctx, embedder, store, docs, lanes=lanes)
    assert sorted(store.ids) == sorted(c.id for c in expected)
    assert len(set(store.ids)) == len(store.ids) == done.embedded
    # each lane set itself up (one core each) and encoded batches of its own
    assert sorted(embedder.lanes) == sorted(embedder.by_thread) and len(embedder.lanes) == lanes
    assert all(n > 0 for n in embedder.by_thread.values())
    assert ctx.reports[-1]["percent"] == 90.0 and not pipeline_threads()


async def test_one_lane_keeps_the_model_s_own_threads():
    embedder = Embedder()
    await run(Ctx(), embedder, Store(), documents(40), lanes=1)
    assert embedder.lanes == [] and len(embedder.by_thread) == 1


async def test_more_lanes_than_batches_still_end():
    docs, embedder, store = documents(6), Embedder(), Store()
    done = await run(Ctx(), embedder, store, docs, batch=64, lanes=4)
    assert done.embedded == len(store.ids) == len(chunk_documents(docs, WordTokenizer(), 4, 1))
    assert len(embedder.by_thread) == 1 and not pipeline_threads()


async def test_a_lane_that_fails_stops_the_others_and_is_raised():
    embedder = Embedder(delay=0.005, fail_on_batch=5)
    with pytest.raises(RuntimeError, match="ran out of memory"):
        await run(Ctx(), embedder, Store(), documents(), lanes=2)
    assert not pipeline_threads()
