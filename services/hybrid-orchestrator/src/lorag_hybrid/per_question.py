"""Per-question routing: the variant that scored best on the evaluated questions nearest this one.

Each evaluated question keeps its embedding (the KB's model) and every variant's score on it. A
new question's predicted score for a variant is the similarity-weighted mean of that variant's
scores on its nearest evaluated questions; without evaluations, the minion's overall scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

NEAREST = 3
MIN_SIMILARITY = 0.05  # farther questions say nothing about this one


@dataclass(frozen=True)
class Prediction:
    scores: dict[str, float]  # variant -> predicted score for this question
    basis: str  # "nearest evaluated questions" or "overall scores"
    neighbours: list[dict[str, Any]] = field(default_factory=list)  # question, similarity

    def ranked(self, order: Sequence[str]) -> list[str]:
        """Variants best first; ties keep `order` (the safer variant first)."""
        return sorted(order, key=lambda v: (-self.scores.get(v, 0.0), order.index(v)))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def predict(
    vector: Sequence[float] | None,
    evaluations: list[dict[str, Any]],
    overall: dict[str, float],
    nearest: int = NEAREST,
) -> Prediction:
    """The question's predicted score per variant from its nearest evaluated questions."""
    usable = [e for e in evaluations if e.get("vector") and e.get("scores")]
    if vector is None or not usable:
        return Prediction(dict(overall), "overall scores")
    near = sorted(((cosine(vector, e["vector"]), e) for e in usable), key=lambda p: -p[0])
    near = [(s, e) for s, e in near[:nearest] if s >= MIN_SIMILARITY]
    if not near:
        return Prediction(dict(overall), "overall scores")
    total = sum(s for s, _ in near)
    variants = {v for _, e in near for v in e["scores"]}
    scores = {
        v: round(sum(s * float(e["scores"].get(v, 0.0)) for s, e in near) / total, 4)
        for v in sorted(variants)
    }
    neighbours = [{"question": e["question"], "similarity": round(s, 4)} for s, e in near]
    return Prediction(scores, "nearest evaluated questions", neighbours)
