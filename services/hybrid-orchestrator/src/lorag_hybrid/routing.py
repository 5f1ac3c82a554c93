"""A minion's three ways of answering, how they are scored, and routing a question to the best.

Variants: `rag` (retrieved context + the minion's LLM: external for EXTERNAL_HYBRID, the local
base model for LOCAL_HYBRID), `lora` (the minion's adapter alone), `lora+rag` (the adapter with
retrieved context). A variant's score on the evaluation pairs is the mean token F1 of its answers
against the expected ones; variants that retrieve are also credited, half and half, with whether
their context held the answer, since their answers cite that context.

Retrieval and grounded answers are the rag-service's (`RagClient.answer`), the adapter alone is
the lora-service's OpenAI API (`ChatClient`): the orchestrator loads no model and reads no store.
Every call names the minion's owner, so the services see only that owner's things.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from lorag_api.hybrid import VARIANTS, Variant
from lorag_api.lora import ChatClient
from lorag_api.rag import AnswerRequest, RagClient

__all__ = ["VARIANTS", "Reply", "Router", "Variant", "token_f1"]
TOP_K = 5
SOURCE_CHARS = 300  # enough of a passage to recognise it; the KB has the rest


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

    def __init__(self, rag: RagClient, chat: ChatClient) -> None:
        self.rag, self.chat = rag, chat

    async def close(self) -> None:
        await self.rag.close()
        await self.chat.close()

    async def ask(
        self,
        minion: dict[str, Any],
        question: str,
        variant: Variant,
        expected: str | None = None,
        max_tokens: int = 64,
    ) -> Reply:
        """The variant's answer, cut to about max_tokens; models write at their default length."""
        owner = minion["owner"]
        if variant == "lora":
            messages = [{"role": "user", "content": question}]
            text = await self.chat.complete(self._adapter(minion), messages, owner=owner)
            return Reply(variant, text[: max_tokens * 8], [])
        request = self._answer_request(minion, question, variant)
        answer = await self.rag.answer(owner, minion["kb"], request)
        sources = [
            {"n": c.n, "source": c.source, "title": c.title, "text": c.text[:SOURCE_CHARS]}
            for c in answer.citations
        ]
        grounded = None
        if expected is not None and answer.citations:
            grounded = any(expected.lower() in c.text.lower() for c in answer.citations)
        return Reply(variant, answer.answer[: max_tokens * 8], sources, grounded)

    def _answer_request(
        self, minion: dict[str, Any], question: str, variant: Variant
    ) -> AnswerRequest:
        if variant == "rag" and minion["training_type"] == "EXTERNAL_HYBRID":
            return AnswerRequest(question=question, top_k=TOP_K, llm="external")
        model = "base" if variant == "rag" else self._adapter(minion)
        return AnswerRequest(question=question, top_k=TOP_K, llm="local", model=model)

    @staticmethod
    def _adapter(minion: dict[str, Any]) -> str:
        if not minion.get("adapter"):
            raise ValueError(f"minion {minion['name']} has no adapter: ask its rag variant")
        return str(minion["adapter"])

    async def score(self, minion: dict[str, Any], pairs: list[tuple[str, str]]) -> dict[str, float]:
        """Each variant's mean score over the evaluation pairs."""
        scores: dict[str, float] = {}
        for variant in VARIANTS:
            total = 0.0
            for question, expected in pairs:
                reply = await self.ask(minion, question, variant, expected)
                f1 = token_f1(reply.text, expected)
                total += f1 if reply.grounded is None else (f1 + float(reply.grounded)) / 2
            scores[variant] = round(total / len(pairs), 4) if pairs else 0.0
        return scores

    async def base_score(self, minion: dict[str, Any], pairs: list[tuple[str, str]]) -> float:
        """The local base model alone, without adapter or context: what the minion improves on."""
        total = 0.0
        for question, expected in pairs:
            messages = [{"role": "user", "content": question}]
            text = await self.chat.complete("base", messages, owner=minion["owner"])
            total += token_f1(text, expected)
        return round(total / len(pairs), 4) if pairs else 0.0
