"""Where one ingest's time goes, phase by phase, in process (no Kafka, no Postgres).

`python -m bench.profile_ingest`: the 1,500-record dataset of `bench rag`, parsed, chunked
(tokenised), encoded and written to an embedded Chroma, each phase timed on its own; then the
raw `SentenceTransformer.encode` of the same chunks (the figure's baseline) at a few batch sizes,
in the dataset's order and sorted by length. Last, the Chroma write of stdlib docstrings cut at the
default 256 tokens, with the text as Chroma documents (full-text indexed) against in the chunks'
metadata (as `ChromaStore` stores it). A profile, not a judged figure (`bench rag` judges).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.rag import dataset

BATCHES = (32, 64, 128)
WRITE_CALL = 256  # chunks per upsert, as the ingest's writer stores them


def timed(label: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{label:<44} {time.perf_counter() - started:8.3f} s")
    return out


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lorag_rag.adapters.chroma_store import ChromaStore
    from lorag_rag.adapters.embedder import EmbedderCache
    from lorag_rag.config import ChromaSettings
    from lorag_rag.domain.chunking import chunk_documents
    from lorag_rag.domain.formats import ReadOptions, parse_file

    data = dataset()
    embedder = timed("load model", EmbedderCache().get, "all-MiniLM-L6-v2")
    docs = timed("parse jsonl", lambda: parse_file("data.jsonl", data, ReadOptions()).documents)
    chunks = timed("chunk (tokenise + windows + ids)", chunk_documents, docs, embedder, 64, 8)
    texts = [c.text for c in chunks]
    print(f"{len(chunks)} chunks")
    embedder.model.encode(texts[:64], batch_size=64)  # warm-up
    vectors = timed("Embedder.encode (normalised), batch 64", embedder.encode, texts, 64)
    for size in BATCHES:
        timed(f"raw encode, batch {size}", embedder.model.encode, texts, batch_size=size)
    for size in BATCHES:
        ordered = sorted(texts, key=len)
        timed(
            f"raw encode sorted by length, batch {size}",
            embedder.model.encode,
            ordered,
            batch_size=size,
        )
    with tempfile.TemporaryDirectory() as tmp:
        store = ChromaStore(ChromaSettings(path=Path(tmp)))
        timed("chroma upsert (one call per 64)", lambda: [
            store.upsert("p", chunks[i : i + 64], vectors[i : i + 64], 1)
            for i in range(0, len(chunks), 64)
        ])  # fmt: skip
        timed("chroma stored()", store.stored, "p")
    text_as_document_or_metadata(embedder)


def text_as_document_or_metadata(embedder) -> None:  # type: ignore[no-untyped-def]
    """Writing stdlib chunks of the default 256 tokens with their text as documents or as
    metadata (`ChromaStore`'s way), random unit vectors, two rounds interleaved."""
    import numpy as np

    from bench.rag import corpus
    from lorag_rag.adapters.chroma_store import ChromaStore
    from lorag_rag.config import ChromaSettings
    from lorag_rag.domain.chunking import chunk_documents
    from lorag_rag.domain.formats import ReadOptions, parse_file

    docs = [d for name, data in corpus(10**9).items()
            for d in parse_file(name, data, ReadOptions()).documents]  # fmt: skip
    chunks = chunk_documents(docs, embedder, 256, 32)[:1800]
    vectors = np.random.default_rng(0).standard_normal((len(chunks), 384)).astype(np.float32)
    print(f"{len(chunks)} stdlib chunks, {sum(len(c.text) for c in chunks) // len(chunks)} "
          "characters on average")  # fmt: skip
    for _ in range(2):
        for as_documents in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                store = ChromaStore(ChromaSettings(path=Path(tmp)))
                label = "documents" if as_documents else "metadata (ChromaStore)"
                timed(f"chroma write, text as {label}", _write, store, chunks, vectors,
                      as_documents)  # fmt: skip


def _write(store, chunks, vectors, as_documents: bool) -> None:  # type: ignore[no-untyped-def]
    from lorag_rag.adapters.chroma_store import VERSION_KEY

    col = store._collection("p")
    for i in range(0, len(chunks), WRITE_CALL):
        part, vs = chunks[i : i + WRITE_CALL], vectors[i : i + WRITE_CALL]
        if as_documents:  # as before: a document each, which Chroma indexes for full text
            col.upsert(ids=[c.id for c in part], embeddings=vs, documents=[c.text for c in part],
                       metadatas=[{**c.metadata(), VERSION_KEY: 1} for c in part])  # fmt: skip
        else:
            store.upsert("p", part, vs, 1)


if __name__ == "__main__":
    main()
