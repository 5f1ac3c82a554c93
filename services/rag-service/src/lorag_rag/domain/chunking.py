"""Token-aware chunking: windows of the embedding model's tokens, cut back to the original text."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Protocol

from lorag_rag.domain.documents import Chunk, Document

Span = tuple[int, int]


class Tokenizer(Protocol):
    """Character offsets of each token of each text (the embedding model's tokenizer)."""

    def offsets(self, texts: list[str]) -> list[list[Span]]: ...


def windows(spans: Sequence[Span], size: int, overlap: int) -> list[Span]:
    """Character spans of windows of `size` tokens, neighbours sharing `overlap` tokens."""
    if not spans:
        return []
    stride = size - overlap
    out = []
    for start in range(0, len(spans), stride):
        end = min(start + size, len(spans))
        out.append((spans[start][0], spans[end - 1][1]))
        if end == len(spans):
            break
    return out


def chunk_id(source: str, text: str, occurrence: int) -> str:
    """Derived from content: the same text in the same source keeps its id across ingests."""
    digest = hashlib.sha256(f"{source}\x00{text}".encode()).hexdigest()[:32]
    return digest if occurrence == 0 else f"{digest}-{occurrence}"


def chunk_documents(
    documents: list[Document], tokenizer: Tokenizer, size: int, overlap: int
) -> list[Chunk]:
    """Cut documents into chunks of at most `size` tokens with ids from their content."""
    return list(iter_chunks(documents, tokenizer, size, overlap))


def iter_chunks(
    documents: Sequence[Document], tokenizer: Tokenizer, size: int, overlap: int,
    per_call: int = 256,
) -> Iterator[Chunk]:  # fmt: skip
    """The chunks of `chunk_documents`, tokenising `per_call` documents at a time."""
    for _, chunks in chunk_slices(documents, tokenizer, size, overlap, per_call):
        yield from chunks


def chunk_slices(
    documents: Sequence[Document], tokenizer: Tokenizer, size: int, overlap: int,
    per_call: int = 256,
) -> Iterator[tuple[int, list[Chunk]]]:  # fmt: skip
    """(documents done, their chunks) for each `per_call` documents, tokenised in one call.

    The ids and positions are those of one pass over all documents: the counters span slices.
    """
    positions: dict[str, int] = {}
    seen: dict[str, int] = {}
    for first in range(0, len(documents), per_call):
        part, chunks = documents[first : first + per_call], []
        for doc, spans in zip(part, tokenizer.offsets([d.text for d in part]), strict=True):
            for index, (start, end) in enumerate(windows(spans, size, overlap)):
                text = doc.text[start:end]
                base = chunk_id(doc.source, text, 0)
                occurrence = seen.get(base, 0)
                seen[base] = occurrence + 1
                position = positions.get(doc.source, 0)
                positions[doc.source] = position + 1
                chunks.append(
                    Chunk(
                        id=chunk_id(doc.source, text, occurrence),
                        text=text,
                        source=doc.source,
                        position=position,
                        slot=f"{doc.part}:{index}",
                        title=doc.title,
                    )
                )
        yield first + len(part), chunks
