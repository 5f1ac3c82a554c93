"""Where one ingest's time goes, phase by phase, in process (no Kafka, no Postgres).

`python -m bench.profile_ingest`: the 1,500-record dataset of `bench rag`, parsed, chunked
(tokenised), encoded and written to an embedded Chroma, each phase timed on its own; then the
raw `SentenceTransformer.encode` of the same chunks (the figure's baseline) at a few batch sizes,
in the dataset's order and sorted by length. A profile, not a judged figure (`bench rag` judges).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.rag import dataset

BATCHES = (32, 64, 128)


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


if __name__ == "__main__":
    main()
