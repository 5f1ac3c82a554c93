"""rag-service file manifest: unchanged files kept unread; changed bytes or settings read."""

import asyncio
import json
import threading
import time
from contextlib import aclosing
from pathlib import Path

from lorag_rag.adapters.datasets import DatasetFile
from lorag_rag.domain.chunking import chunk_documents
from lorag_rag.domain.documents import BadFile, Document
from lorag_rag.domain.formats import ReadOptions
from lorag_rag.domain.locations import LocalLocation
from lorag_rag.domain.manifest import FileEntry, content_digest, settings_digest
from lorag_rag.domain.plan import StoredChunk, plan_ingest
from lorag_rag.loading import LoadedDataset, keep_listed, parse_one, read_in_order, read_one
from tests.unit.test_rag_domain import WordTokenizer

SETTINGS = settings_digest(model="all-MiniLM-L6-v2", chunk_tokens=64, chunk_overlap=8)


class Reader:
    """Files from a dict, counting reads; parse_one needs nothing else of a DatasetReader."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.reads = files, []

    def read(self, file: DatasetFile) -> bytes:
        self.reads.append(file.name)
        return self.files[file.name]


def load(
    files: dict[str, bytes], manifest: dict[str, FileEntry], settings: str = SETTINGS,
    tags: dict[str, str] | None = None,
):  # fmt: skip
    """As the ingest loads: files the listing shows unchanged kept unread, the others read."""
    out, reader = LoadedDataset(), Reader(files)
    for name in files:
        file = DatasetFile(name, LocalLocation(Path("/") / name), (tags or {}).get(name))
        if not keep_listed(file, None, out, manifest, settings):
            data = read_one(reader, file)  # type: ignore[arg-type]
            parse_one(file, data, None, ReadOptions(), out, manifest, settings)
    out.reads = reader.reads  # type: ignore[attr-defined]
    return out


def entry(
    name: str, data: bytes, chunks: int = 3, pairs: int = 0, tag: str | None = None
) -> FileEntry:
    return FileEntry(name, content_digest(data), SETTINGS, chunks, pairs, tag)


def test_an_unchanged_file_is_kept_unparsed_and_a_changed_one_is_read():
    files = {"a.txt": b"alpha text", "b.txt": b"beta text"}
    manifest = {"a.txt": entry("a.txt", b"alpha text"), "b.txt": entry("b.txt", b"old beta")}
    out = load(files, manifest)
    assert out.kept == {"a.txt"} and out.files["a.txt"] == manifest["a.txt"]
    assert [d.source for d in out.documents] == ["b.txt"] and out.sources == 2
    assert out.files["b.txt"].digest == content_digest(b"beta text")


def test_a_new_file_is_read_and_a_changed_setting_rereads_every_file():
    files = {"a.txt": b"alpha text", "new.txt": b"fresh"}
    manifest = {"a.txt": entry("a.txt", b"alpha text")}
    assert load(files, manifest).kept == {"a.txt"}
    for changed in (
        settings_digest(model="all-MiniLM-L6-v2", chunk_tokens=32, chunk_overlap=8),
        settings_digest(model="another-model", chunk_tokens=64, chunk_overlap=8),
    ):
        out = load(files, manifest, changed)
        assert not out.kept and {d.source for d in out.documents} == {"a.txt", "new.txt"}


def test_a_kept_file_with_pairs_still_gives_its_pairs():
    faq = json.dumps({"question": "Q?", "answer": "A."}).encode()
    out = load({"faq.jsonl": faq}, {"faq.jsonl": entry("faq.jsonl", faq, pairs=1)})
    assert out.kept == {"faq.jsonl"} and not out.documents and len(out.pairs) == 1


def test_plan_keeps_the_chunks_of_kept_sources_and_deletes_a_removed_ones():
    docs = [Document(s, f"words of {s}") for s in ("kept.txt", "gone.txt", "changed.txt")]
    stored = [
        StoredChunk(c.id, c.source, c.slot, 1) for c in chunk_documents(docs, WordTokenizer(), 8, 0)
    ]
    fresh = chunk_documents([Document("changed.txt", "new words")], WordTokenizer(), 8, 0)
    plan = plan_ingest(fresh, stored, live_version=1, kept={"kept.txt"})
    assert plan.kept == 1 and plan.unchanged == 1 and len(plan.to_embed) == 1
    assert (plan.updated, plan.deleted) == (1, 1)
    assert plan.to_delete == [s.id for s in stored if s.source in ("gone.txt", "changed.txt")]


def test_a_file_the_listing_shows_unchanged_is_kept_without_being_read():
    files = {"a.txt": b"alpha text", "b.txt": b"beta text", "c.txt": b"gamma"}
    manifest = {
        "a.txt": entry("a.txt", b"alpha text", tag="e1/10"),
        "b.txt": entry("b.txt", b"old beta", tag="e2/8"),
        "c.txt": entry("c.txt", b"gamma", tag="e3/5"),
    }
    # a: same tag; b: new bytes, new tag; c: the same bytes uploaded again under a new tag
    out = load(files, manifest, tags={"a.txt": "e1/10", "b.txt": "e9/9", "c.txt": "e4/5"})
    assert out.reads == ["b.txt", "c.txt"]
    assert out.kept == {"a.txt", "c.txt"} and [d.source for d in out.documents] == ["b.txt"]
    assert out.files["a.txt"] == manifest["a.txt"]
    assert out.files["b.txt"].tag == "e9/9" and out.files["c.txt"].tag == "e4/5"  # recorded


def test_a_listed_tag_does_not_skip_the_read_when_settings_pairs_or_tags_say_otherwise():
    files = {"a.txt": b"alpha text"}
    other = settings_digest(model="all-MiniLM-L6-v2", chunk_tokens=32, chunk_overlap=8)
    cases = [
        ({"a.txt": entry("a.txt", b"alpha text", tag="e1/10")}, other, "e1/10"),  # settings
        ({"a.txt": entry("a.txt", b"alpha text", pairs=2, tag="e1/10")}, SETTINGS, "e1/10"),
        ({"a.txt": entry("a.txt", b"alpha text")}, SETTINGS, "e1/10"),  # a manifest of before
        ({"a.txt": entry("a.txt", b"alpha text", tag="e1/10")}, SETTINGS, None),  # local file
    ]
    for manifest, settings, tag in cases:
        assert load(files, manifest, settings, {"a.txt": tag} if tag else None).reads == ["a.txt"]


class SlowReader:
    """Reads that take their file's delay, counting how many run at once; `bad*` files fail."""

    def __init__(self, delays: dict[str, float]) -> None:
        self.delays, self.running, self.most, self.started = delays, 0, 0, []
        self.lock = threading.Lock()

    def read(self, file: DatasetFile) -> bytes:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(file.name)
        time.sleep(self.delays[file.name])
        with self.lock:
            self.running -= 1
        if file.name.startswith("bad"):
            raise BadFile(file.name, "FILE_CORRUPTED", "digest mismatch")
        return file.name.encode()


def files_named(*names: str) -> list[DatasetFile]:
    return [DatasetFile(n, LocalLocation(Path("/") / n)) for n in names]


async def test_files_read_ahead_come_back_in_order_with_bad_ones_in_place():
    names = [f"f{i}" for i in range(12)] + ["bad.txt"]
    # every third read is slow, so the reads after it finish first
    reader = SlowReader({n: 0.05 if i % 3 == 0 else 0.0 for i, n in enumerate(names)})
    async with aclosing(read_in_order(reader, files_named(*names), depth=4)) as reads:  # type: ignore[arg-type]
        got = [data async for data in reads]
    assert got[:-1] == [n.encode() for n in names[:-1]]
    assert isinstance(got[-1], BadFile) and got[-1].code == "FILE_CORRUPTED"
    assert 1 < reader.most <= 4  # reads overlap, and no more than the depth at once


async def test_leaving_early_drops_the_reads_not_started_and_does_not_wait_for_running_ones():
    names = [f"f{i}" for i in range(20)]
    reader = SlowReader(dict.fromkeys(names, 0.3))
    reads = read_in_order(reader, files_named(*names), depth=3)  # type: ignore[arg-type]
    assert await anext(reads) == b"f0"
    started = time.perf_counter()
    await reads.aclose()
    assert time.perf_counter() - started < 0.2  # the running reads end on their own threads
    await asyncio.sleep(0.8)
    # three at first, and f3 queued as f0 was handed on (started, or dropped by the close)
    assert reader.started in (names[:3], names[:4])
