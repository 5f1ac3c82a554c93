"""Retrieval quality: hit rate@k and mean reciprocal rank over question/answer pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lorag_rag.domain.documents import QaPair


@dataclass(frozen=True)
class RetrievalQuality:
    pairs: int
    k: int
    hit_rate: float
    mrr: float


def first_hit(answer: str, retrieved: Sequence[str]) -> int | None:
    """1-based rank of the first retrieved text holding the answer (case-insensitive)."""
    needle = answer.casefold().strip()
    for rank, text in enumerate(retrieved, 1):
        if needle and needle in text.casefold():
            return rank
    return None


def retrieval_quality(
    pairs: Sequence[QaPair], retrieved: Sequence[Sequence[str]], k: int
) -> RetrievalQuality:
    """Hit rate@k and MRR@k; `retrieved[i]` are the top-k texts for `pairs[i].question`."""
    ranks = [first_hit(p.answer, texts[:k]) for p, texts in zip(pairs, retrieved, strict=True)]
    n = len(pairs)
    hits = sum(1 for r in ranks if r is not None)
    mrr = sum(1.0 / r for r in ranks if r is not None)
    return RetrievalQuality(n, k, hits / n if n else 0.0, mrr / n if n else 0.0)
