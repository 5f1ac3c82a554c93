"""The Chroma store keeps a chunk's text in its metadata, and still reads KBs written before."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lorag_rag.adapters.chroma_store import TEXT_KEY, VERSION_KEY, ChromaStore, collection_name
from lorag_rag.config import ChromaSettings
from lorag_rag.domain.documents import Chunk


def _vectors(n: int) -> np.ndarray:
    vectors = np.random.default_rng(7).standard_normal((n, 8)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _chunks(n: int) -> list[Chunk]:
    return [Chunk(f"c{i}", f"text of chunk {i}", "a.txt", i, f"0:{i}", "A") for i in range(n)]


def test_text_is_stored_beside_the_metadata_and_handed_out_as_the_hits_text(
    tmp_path: Path,
) -> None:
    store, chunks, vectors = ChromaStore(ChromaSettings(path=tmp_path)), _chunks(6), _vectors(6)
    store.upsert("kb", chunks, vectors, version=1)

    col = store.client.get_collection(collection_name("kb"))
    raw = col.get(ids=["c2"], include=["documents", "metadatas"])
    assert raw["documents"] == [None]  # no full-text index is built for it
    assert raw["metadatas"] is not None and raw["metadatas"][0][TEXT_KEY] == "text of chunk 2"

    (hits,) = store.query("kb", vectors[2:3], 3, version=1)
    assert hits[0].id == "c2" and hits[0].text == "text of chunk 2"
    assert hits[0].metadata == {
        "source": "a.txt", "position": 2, "slot": "0:2", "title": "A", VERSION_KEY: 1
    }  # fmt: skip
    assert all(h.text == f"text of chunk {h.id[1:]}" for h in hits)


def test_a_kb_whose_texts_are_documents_reads_as_before(tmp_path: Path) -> None:
    """Written before the text moved: documents, no text key; a filtered query too."""
    store, vectors = ChromaStore(ChromaSettings(path=tmp_path)), _vectors(5)
    col = store.client.get_or_create_collection(
        collection_name("old"), configuration={"hnsw": {"space": "cosine"}},
        embedding_function=None,
    )  # fmt: skip
    col.upsert(
        ids=[f"o{i}" for i in range(5)], embeddings=vectors,
        documents=[f"old text {i}" for i in range(5)],
        metadatas=[{"source": "b.txt", "position": i, "slot": f"0:{i}", VERSION_KEY: 1}
                   for i in range(5)],
    )  # fmt: skip
    store.upsert("old", [Chunk("n0", "new text", "c.txt", 0, "0:0")], vectors[:1] * -1, version=2)

    expected = {**{f"o{i}": f"old text {i}" for i in range(5)}, "n0": "new text"}
    (hits,) = store.query("old", vectors[3:4], 6, version=2)
    assert {h.id: h.text for h in hits} == expected
    assert hits[0].id == "o3" and TEXT_KEY not in hits[0].metadata
    (filtered,) = store.query("old", vectors[3:4], 6, version=2, where={"source": "c.txt"})
    assert [(h.id, h.text) for h in filtered] == [("n0", "new text")]
