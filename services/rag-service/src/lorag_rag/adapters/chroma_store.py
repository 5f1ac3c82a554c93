"""Knowledge bases as Chroma collections; each chunk records the KB version that wrote it.

A version becomes visible only when the registry commits it: queries filter on `kb_version`, so
chunks of an ingest in progress (or of one that was cancelled or crashed) are never returned.

A chunk's text is kept in its metadata (`chunk_text`), not as Chroma's document: embedded Chroma
indexes every document for full-text search (SQLite FTS5, trigrams), which nothing here asks for
and which was about half of a write, done holding the GIL: 1,785 stdlib chunks of the default 256
tokens took 3.33-3.57 s as documents, 1.65-2.10 s as metadata (`python -m bench.profile_ingest`,
two runs). KBs written before keep their documents and read as before.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import numpy as np

from lorag_rag.config import ChromaSettings
from lorag_rag.domain.documents import Chunk
from lorag_rag.domain.plan import StoredChunk

VERSION_KEY = "kb_version"
TEXT_KEY = "chunk_text"  # stored with the chunk, never handed out as its metadata
BATCH = 1000


def collection_name(kb: str) -> str:
    """Chroma wants 3-512 characters ending in a letter or digit."""
    name = f"kb-{kb}"
    return name if name[-1].isalnum() else name + hashlib.sha256(kb.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Hit:
    id: str
    text: str
    score: float  # cosine similarity, 1 is identical
    metadata: dict[str, Any]

    @property
    def version(self) -> int:
        return int(self.metadata.get(VERSION_KEY, 0))


class ChromaStore:
    """Reads and writes chunk vectors; synchronous (call it from a thread in async code)."""

    def __init__(self, settings: ChromaSettings) -> None:
        import chromadb

        if settings.url:
            url = urlparse(settings.url)
            self.client = chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or 8000,
                ssl=url.scheme == "https",
            )
        else:
            settings.path.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(settings.path))
        self._collections: dict[str, Any] = {}

    def _collection(self, kb: str) -> Any:
        if kb not in self._collections:  # a lookup per query costs more than the query
            self._collections[kb] = self.client.get_or_create_collection(
                collection_name(kb), configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )  # fmt: skip
        return self._collections[kb]

    def stored(self, kb: str) -> list[StoredChunk]:
        """Every chunk of the KB, committed or not, with its source, slot and version."""
        col, out, offset = self._collection(kb), [], 0
        while True:
            page = col.get(include=["metadatas"], limit=5 * BATCH, offset=offset)
            for cid, meta in zip(page["ids"], page["metadatas"] or [], strict=True):
                out.append(
                    StoredChunk(cid, str(meta["source"]), str(meta["slot"]), int(meta[VERSION_KEY]))
                )
            if len(page["ids"]) < 5 * BATCH:
                return out
            offset += len(page["ids"])

    def upsert(self, kb: str, chunks: list[Chunk], vectors: np.ndarray, version: int) -> None:
        col = self._collection(kb)
        for start in range(0, len(chunks), BATCH):
            part = chunks[start : start + BATCH]
            col.upsert(
                ids=[c.id for c in part],
                embeddings=vectors[start : start + BATCH],
                metadatas=[{**c.metadata(), VERSION_KEY: version, TEXT_KEY: c.text} for c in part],
            )

    def delete(self, kb: str, ids: list[str]) -> None:
        col = self._collection(kb)
        for start in range(0, len(ids), BATCH):
            col.delete(ids=ids[start : start + BATCH])

    def delete_above(self, kb: str, version: int) -> None:
        """Remove what uncommitted ingests wrote; the whole collection if nothing was committed."""
        if version == 0:
            self.drop(kb)
        else:
            self._collection(kb).delete(where={VERSION_KEY: {"$gt": version}})

    def drop(self, kb: str) -> None:
        self._collections.pop(kb, None)
        if collection_name(kb) in {c.name for c in self.client.list_collections()}:
            self.client.delete_collection(collection_name(kb))

    def query(
        self, kb: str, vectors: np.ndarray, k: int, version: int,
        where: dict[str, Any] | None = None,
    ) -> list[list[Hit]]:  # fmt: skip
        """For each query vector, the k nearest committed chunks, optionally filtered.

        A metadata filter makes Chroma scan; uncommitted chunks are rare (only while an ingest
        runs), so without a user filter it over-fetches, drops them here, and filters only when
        too few remain.
        """
        if where is None:
            n = 2 * k + 8
            found = self._search(kb, vectors, n, None)
            hits = [[h for h in row if h.version <= version][:k] for row in found]
            # complete when k remain, or when the collection had fewer than n chunks at all
            if all(len(row) == k or len(raw) < n for row, raw in zip(hits, found, strict=True)):
                return hits
        visible: dict[str, Any] = {VERSION_KEY: {"$lte": version}}
        return self._search(kb, vectors, k, {"$and": [visible, where]} if where else visible)

    def _search(
        self, kb: str, vectors: np.ndarray, n: int, where: dict[str, Any] | None
    ) -> list[list[Hit]]:
        col = self._collection(kb)
        found = col.query(
            query_embeddings=vectors.reshape(len(vectors), -1), n_results=n, where=where,
            include=["metadatas", "distances"],
        )  # fmt: skip
        metas, dists = found["metadatas"], found["distances"]
        assert metas is not None and dists is not None
        rows = [[dict(m or {}) for m in row] for row in metas]
        # chunks written before the text moved into the metadata: their documents, in one call
        old = sorted({cid for ids, row in zip(found["ids"], rows, strict=True)
                      for cid, m in zip(ids, row, strict=True) if TEXT_KEY not in m})  # fmt: skip
        documents: dict[str, str | None] = {}
        if old:
            got = col.get(ids=old, include=["documents"])
            documents = dict(zip(got["ids"], got["documents"] or [], strict=True))
        return [
            [Hit(cid, str(m.pop(TEXT_KEY, None) or documents.get(cid) or ""), 1.0 - float(d), m)
             for cid, m, d in zip(ids, row, dists[i], strict=True)]
            for i, (ids, row) in enumerate(zip(found["ids"], rows, strict=True))
        ]  # fmt: skip
