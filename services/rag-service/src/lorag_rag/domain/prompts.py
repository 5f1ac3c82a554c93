"""The prompt that grounds an answer in retrieved chunks, numbered so the model can cite them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SYSTEM = (
    "Answer the question using only the numbered context passages. Cite the passages you use "
    "as [1], [2], … right after the claim they support. If the context does not hold the "
    "answer, say that you do not know."
)


@dataclass(frozen=True)
class Passage:
    text: str
    source: str
    title: str | None = None


def context_block(passages: Sequence[Passage]) -> str:
    return "\n\n".join(
        f"[{n}] ({p.source}{' — ' + p.title if p.title else ''})\n{p.text.strip()}"
        for n, p in enumerate(passages, 1)
    )


def chat_messages(question: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
    """System instructions, then the context and the question as the user's message."""
    user = f"Context:\n{context_block(passages)}\n\nQuestion: {question}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
