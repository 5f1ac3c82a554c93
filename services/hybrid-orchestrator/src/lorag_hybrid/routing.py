"""A minion's ways of answering, how they are scored, and routing a question to the best.

Variants: `rag` (retrieved context + the minion's LLM: external for EXTERNAL_HYBRID, the local
base model for LOCAL_HYBRID), `lora` (the minion's adapter alone), `lora+rag` (the adapter with
retrieved context), `extractive` (the retrieved passages' best sentences, nothing generated).
A variant's score on an evaluation pair is the token F1 of its answer against the expected one;
variants that retrieve are also credited, half and half, with whether their context held the
answer, since their answers cite that context. A degenerate answer (`quality.degenerate`) scores
nothing. Every question's scores are kept with its embedding: a new question is routed by the
variants' scores on the evaluated questions nearest to it (`per_question`).

Retrieval and grounded answers are the rag-service's (`RagClient.answer`), the adapter alone is
the lora-service's OpenAI API (`ChatClient`): the orchestrator loads no model and reads no store.
Every call names the minion's owner, so the services see only that owner's things.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lorag_api.hybrid import VARIANTS, Variant
from lorag_api.lora import ChatClient
from lorag_api.rag import AnswerRequest, ExtractRequest, Query, RagClient
from lorag_hybrid.per_question import Prediction, predict
from lorag_hybrid.quality import degenerate

__all__ = ["VARIANTS", "Evaluation", "Reply", "Routed", "Router", "Variant", "token_f1"]
log = logging.getLogger(__name__)
TOP_K = 5
SOURCE_CHARS = 300  # enough of a passage to recognise it; the KB has the rest


@dataclass(frozen=True)
class Reply:
    variant: Variant
    text: str
    sources: list[dict[str, Any]]
    grounded: bool | None = None  # with an expected answer: did the context hold it?
    degenerate: str | None = None  # why the text is no answer (repetition, no overlap), if so


@dataclass(frozen=True)
class Evaluation:
    scores: dict[str, float]  # variant -> mean over the pairs
    questions: list[dict[str, Any]]  # question, vector, scores: what per-question routing reads


@dataclass(frozen=True)
class Routed:
    reply: Reply
    prediction: Prediction
    rejected: list[dict[str, str]] = field(default_factory=list)  # variant, reason


def token_f1(answer: str, expected: str) -> float:
    got, want = _tokens(answer), _tokens(expected)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def _tokens(text: str) -> list[str]:
    # a citation marker ([1]) is where the answer came from, not part of it
    return re.findall(r"[a-z0-9]+", re.sub(r"\[\d+\]", " ", text.lower()))


class Router:
    """Answers questions as a minion, through each variant."""

    def __init__(
        self, rag: RagClient, chat: ChatClient, provider: ChatClient | None = None
    ) -> None:
        # provider: the fine-tuning provider's chat API, when it is not the local lora-service
        self.rag, self.chat, self.provider = rag, chat, provider

    async def close(self) -> None:
        await self.rag.close()
        await self.chat.close()
        if self.provider is not None:
            await self.provider.close()

    def _at_provider(self, minion: dict[str, Any]) -> bool:
        """An EXTERNAL_HYBRID's fine-tuned model lives at a provider other than lorag's own."""
        return self.provider is not None and bool((minion.get("llm") or {}).get("ftjob"))

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
            chat = self.provider if self._at_provider(minion) and self.provider else self.chat
            text = (await chat.complete(self._adapter(minion), messages, owner=owner))[
                : max_tokens * 8
            ]
            return Reply(variant, text, [], degenerate=degenerate(text))
        if variant == "lora+rag" and self._at_provider(minion):
            return await self._provider_with_context(minion, question, expected, max_tokens)
        if variant == "extractive":
            extract = ExtractRequest(question=question, top_k=TOP_K)
            answer = await self.rag.extract(owner, minion["kb"], extract)
        else:
            request = self._answer_request(minion, question, variant)
            answer = await self.rag.answer(owner, minion["kb"], request)
        sources = [
            {"n": c.n, "source": c.source, "title": c.title, "text": c.text[:SOURCE_CHARS]}
            for c in answer.citations
        ]
        grounded = None
        if expected is not None and answer.citations:
            grounded = any(expected.lower() in c.text.lower() for c in answer.citations)
        text = answer.answer[: max_tokens * 8]
        bad = degenerate(text, [c.text for c in answer.citations])
        return Reply(variant, text, sources, grounded, bad)

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
        return (await self.evaluate(minion, pairs)).scores

    async def evaluate(
        self, minion: dict[str, Any], pairs: list[tuple[str, str]], embed: bool = False
    ) -> Evaluation:
        """Every variant's score on every pair, their means, and (embed) each question's vector."""
        per_question: list[dict[str, float]] = [{} for _ in pairs]
        for variant in VARIANTS:
            for scores, (question, expected) in zip(per_question, pairs, strict=True):
                scores[variant] = await self._score_one(minion, question, expected, variant)
        means: dict[str, float] = {
            v: round(sum(s[v] for s in per_question) / len(pairs), 4) if pairs else 0.0
            for v in VARIANTS
        }
        vectors: list[list[float] | None] = [None] * len(pairs)
        if embed and pairs:
            found = await self.rag.embed(minion["owner"], minion["kb"], [q for q, _ in pairs])
            vectors = list(found.vectors)
        questions = [
            {"question": q, "vector": vec, "scores": s}
            for (q, _), vec, s in zip(pairs, vectors, per_question, strict=True)
        ]
        return Evaluation(means, questions)

    async def _score_one(
        self, minion: dict[str, Any], question: str, expected: str, variant: Variant
    ) -> float:
        try:
            reply = await self.ask(minion, question, variant, expected)
        except Exception as exc:  # no adapter, or its endpoint down: this variant cannot answer
            log.warning("%s could not answer %r: %s", variant, question[:80], exc)
            return 0.0
        if reply.degenerate:
            return 0.0
        f1 = token_f1(reply.text, expected)
        return round(f1 if reply.grounded is None else (f1 + float(reply.grounded)) / 2, 4)

    async def predict(self, minion: dict[str, Any], question: str) -> Prediction:
        """The variants' predicted scores on this question, from the nearest evaluated ones."""
        evaluations = minion.get("evaluations") or []
        vector = None
        if any(e.get("vector") for e in evaluations):
            found = await self.rag.embed(minion["owner"], minion["kb"], [question])
            vector = found.vectors[0]
        return predict(vector, evaluations, minion.get("scores") or {})

    async def route(self, minion: dict[str, Any], question: str) -> Routed:
        """The best predicted variant's answer; a failing or degenerate one yields to the next."""
        prediction = await self.predict(minion, question)
        order = [v for v in prediction.ranked(VARIANTS) if minion.get("adapter") or "lora" not in v]
        rejected: list[dict[str, str]] = []
        last: Reply | None = None
        for variant in order:
            try:
                reply = await self.ask(minion, question, variant)  # type: ignore[arg-type]
            except Exception as exc:  # one variant's endpoint being down must not stop the others
                rejected.append(
                    {"variant": variant, "reason": f"{type(exc).__name__}: {exc}"[:300]}
                )
                continue
            if reply.degenerate is None and not reply.sources:
                reply = await self._checked_against_sources(minion, question, reply)
            if reply.degenerate is None:
                return Routed(reply, prediction, rejected)
            rejected.append({"variant": variant, "reason": reply.degenerate})
            last = last or reply
        if last is None:
            raise RuntimeError("; ".join(f"{r['variant']}: {r['reason']}" for r in rejected))
        return Routed(last, prediction, rejected)

    async def _provider_with_context(
        self, minion: dict[str, Any], question: str, expected: str | None, max_tokens: int
    ) -> Reply:
        """The provider's fine-tuned model, given the passages the rag-service retrieves."""
        assert self.provider is not None
        hits = await self.rag.query(
            minion["owner"], minion["kb"], Query(question=question, top_k=TOP_K)
        )
        context = "\n\n".join(f"[{h.rank}] {h.text}" for h in hits.hits)
        messages = [
            {"role": "system", "content": "Answer from the numbered passages; cite them as [n]."},
            {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"},
        ]
        text = (await self.provider.complete(self._adapter(minion), messages))[: max_tokens * 8]
        sources = [{"n": h.rank, "source": h.source or "?", "title": h.title,
                    "text": h.text[:SOURCE_CHARS]} for h in hits.hits]  # fmt: skip
        grounded = None
        if expected is not None and hits.hits:
            grounded = any(expected.lower() in h.text.lower() for h in hits.hits)
        bad = degenerate(text, [h.text for h in hits.hits])
        return Reply("lora+rag", text, sources, grounded, bad)

    async def _checked_against_sources(
        self, minion: dict[str, Any], question: str, reply: Reply
    ) -> Reply:
        """An answer without sources (the adapter alone), checked against what retrieval finds."""
        hits = await self.rag.query(
            minion["owner"], minion["kb"], Query(question=question, top_k=TOP_K)
        )
        bad = degenerate(reply.text, [h.text for h in hits.hits])
        return Reply(reply.variant, reply.text, reply.sources, reply.grounded, bad)

    async def base_score(self, minion: dict[str, Any], pairs: list[tuple[str, str]]) -> float:
        """The local base model alone, without adapter or context: what the minion improves on."""
        total = 0.0
        for question, expected in pairs:
            messages = [{"role": "user", "content": question}]
            text = await self.chat.complete("base", messages, owner=minion["owner"])
            total += token_f1(text, expected)
        return round(total / len(pairs), 4) if pairs else 0.0
