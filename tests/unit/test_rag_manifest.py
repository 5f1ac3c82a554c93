"""rag-service file manifest: unchanged files kept unread; changed bytes or settings read."""

import json
from pathlib import Path

from lorag_rag.adapters.datasets import DatasetFile
from lorag_rag.domain.chunking import chunk_documents
from lorag_rag.domain.documents import Document
from lorag_rag.domain.formats import ReadOptions
from lorag_rag.domain.locations import LocalLocation
from lorag_rag.domain.manifest import FileEntry, content_digest, settings_digest
from lorag_rag.domain.plan import StoredChunk, plan_ingest
from lorag_rag.loading import LoadedDataset, parse_one
from tests.unit.test_rag_domain import WordTokenizer

SETTINGS = settings_digest(model="all-MiniLM-L6-v2", chunk_tokens=64, chunk_overlap=8)


class Reader:
    """Files from a dict, counting reads; parse_one needs nothing else of a DatasetReader."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read(self, file: DatasetFile) -> bytes:
        return self.files[file.name]


def load(files: dict[str, bytes], manifest: dict[str, FileEntry], settings: str = SETTINGS):
    out, reader = LoadedDataset(), Reader(files)
    for name in files:
        file = DatasetFile(name, LocalLocation(Path("/") / name))
        parse_one(reader, file, None, ReadOptions(), out, manifest, settings)  # type: ignore[arg-type]
    return out


def entry(name: str, data: bytes, chunks: int = 3, pairs: int = 0) -> FileEntry:
    return FileEntry(name, content_digest(data), SETTINGS, chunks, pairs)


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
