"""An answer is written from as many of the best passages as the chat model's context holds."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from lorag_rag import retrieval
from lorag_rag.config import LlmSettings
from lorag_rag.domain.prompts import Passage

PASSAGES = [Passage(f"passage {n} " + "word " * 40, f"s{n}.md") for n in range(1, 6)]


def refusal(code: str) -> openai.BadRequestError:
    body = {"message": "the prompt is too long", "type": "invalid_request_error",
            "param": "messages", "code": code}  # fmt: skip
    request = httpx.Request("POST", "http://llm/v1/chat/completions")
    response = httpx.Response(400, request=request, json={"error": body})
    return openai.BadRequestError("refused", response=response, body=body)


def model_reading(at_most: int, code: str = "context_length_exceeded") -> Any:
    """A chat model that refuses prompts holding more than `at_most` passages."""
    seen: list[int] = []

    async def complete(settings: Any, messages: list[dict[str, str]], **_: Any) -> str:
        count = messages[-1]["content"].count("passage ")
        seen.append(count)
        if count > at_most:
            raise refusal(code)
        return f"from {count}"

    complete.seen = seen  # type: ignore[attr-defined]
    return complete


async def test_the_lowest_ranked_passages_give_way_until_the_prompt_fits(monkeypatch):
    complete = model_reading(2)
    monkeypatch.setattr(retrieval.llm, "complete", complete)
    passages = list(PASSAGES)
    text = await retrieval._complete_within_context(LlmSettings(), "q?", passages, None, None)
    assert text == "from 2" and complete.seen == [5, 4, 3, 2]
    assert [p.source for p in passages] == ["s1.md", "s2.md"]  # the best ones, cited as used


async def test_a_prompt_too_long_with_one_passage_and_other_refusals_stand(monkeypatch):
    monkeypatch.setattr(retrieval.llm, "complete", model_reading(0))
    with pytest.raises(openai.BadRequestError):
        await retrieval._complete_within_context(LlmSettings(), "q?", list(PASSAGES), None, None)
    other = model_reading(0, code="invalid_value")
    monkeypatch.setattr(retrieval.llm, "complete", other)
    with pytest.raises(openai.BadRequestError):
        await retrieval._complete_within_context(LlmSettings(), "q?", list(PASSAGES), None, None)
    assert other.seen == [5]  # not a context refusal: no retry
