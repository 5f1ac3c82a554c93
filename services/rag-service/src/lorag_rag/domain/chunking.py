"""Token-aware chunking: windows of the embedding model's tokens, cut back to the original text."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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
    chunks: list[Chunk] = []
    positions: dict[str, int] = {}
    seen: dict[str, int] = {}
    for doc, spans in zip(documents, tokenizer.offsets([d.text for d in documents]), strict=True):
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
    return chunks
