"""A minion's three ways of answering, how they are scored, and routing a question to the best.

Variants: `rag` (retrieved context + the minion's LLM: external for EXTERNAL_HYBRID, the local
base model for LOCAL_HYBRID), `lora` (the minion's adapter alone), `lora+rag` (the adapter with
retrieved context). A variant's score on the evaluation pairs is the mean token F1 of its answers
against the expected ones; variants that retrieve are also credited, half and half, with whether
their context held the answer, since their answers cite that context.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection

from lorag_rag import retrieval
from lorag_rag.adapters import llm
from lorag_rag.config import LlmSettings
from lorag_rag.deps import RagDeps
from lorag_rag.domain.prompts import Passage, chat_messages

Variant = Literal["rag", "lora", "lora+rag"]
VARIANTS: tuple[Variant, ...] = ("rag", "lora", "lora+rag")
TOP_K = 5


@dataclass(frozen=True)
class Reply:
    variant: Variant
    text: str
    sources: list[dict[str, Any]]
    grounded: bool | None = None  # with an expected answer: did the context hold it?


def token_f1(answer: str, expected: str) -> float:
    got, want = _tokens(answer), _tokens(expected)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


class Router:
    """Answers questions as a minion, through each variant."""

    def __init__(self, rag: RagDeps, lora_api: str, external: LlmSettings) -> None:
        self.rag, self.lora_api, self.external = rag, lora_api, external

    async def ask(
        self,
        conn: AsyncConnection[Any],
        minion: dict[str, Any],
        question: str,
        variant: Variant,
        expected: str | None = None,
        max_tokens: int = 64,
    ) -> Reply:
        passages: list[Passage] = []
        sources: list[dict[str, Any]] = []
        if variant != "lora":
            hits = await retrieval.query(conn, self.rag, minion["kb"], question, TOP_K)
            passages = [
                Passage(h.text, str(h.metadata.get("source", "?")), h.metadata.get("title"))
                for h in hits
            ]
            sources = [
                {"n": n, "source": p.source, "title": p.title, "text": p.text[:300]}
                for n, p in enumerate(passages, 1)
            ]
        messages = (
            chat_messages(question, passages)
            if passages
            else [{"role": "user", "content": question}]
        )
        text = await llm.complete(self._endpoint(minion, variant), messages)
        grounded = None
        if expected is not None and passages:
            grounded = any(expected.lower() in p.text.lower() for p in passages)
        return Reply(variant, text[: max_tokens * 8], sources, grounded)

    def _endpoint(self, minion: dict[str, Any], variant: Variant) -> LlmSettings:
        if variant == "rag" and minion["training_type"] == "EXTERNAL_HYBRID":
            return self.external
        if variant != "rag" and not minion.get("adapter"):
            raise ValueError(f"minion {minion['name']} has no adapter: ask its rag variant")
        model = "base" if variant == "rag" else minion["adapter"]
        return LlmSettings(base_url=self.lora_api, model=model)

    async def score(
        self, conn: AsyncConnection[Any], minion: dict[str, Any], pairs: list[tuple[str, str]]
    ) -> dict[str, float]:
        """Each variant's mean score over the evaluation pairs."""
        scores: dict[str, float] = {}
        for variant in VARIANTS:
            total = 0.0
            for question, expected in pairs:
                reply = await self.ask(conn, minion, question, variant, expected)
                f1 = token_f1(reply.text, expected)
                total += f1 if reply.grounded is None else (f1 + float(reply.grounded)) / 2
            scores[variant] = round(total / len(pairs), 4) if pairs else 0.0
        return scores

    async def base_score(
        self, conn: AsyncConnection[Any], minion: dict[str, Any], pairs: list[tuple[str, str]]
    ) -> float:
        """The local base model alone, without adapter or context: what the minion improves on."""
        bare = LlmSettings(base_url=self.lora_api, model="base")
        total = 0.0
        for question, expected in pairs:
            text = await llm.complete(bare, [{"role": "user", "content": question}])
            total += token_f1(text, expected)
        return round(total / len(pairs), 4) if pairs else 0.0
