"""The orchestrator's router: which service and model each variant asks, for whom, and scoring."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from lorag_api.lora import ChatClient
from lorag_api.rag import RagClient
from lorag_hybrid.routing import Router

CONTEXT = "The staging cluster is called harbor-seventeen."


def seen(to: str, request: httpx.Request, body: dict[str, Any]) -> dict[str, Any]:
    owner = request.headers.get("x-lorag-owner")
    return {"to": to, "path": request.url.path, "owner": owner, **body}


def fake_services(calls: list[dict[str, Any]]) -> Router:
    """A router whose rag-service and lora-service are in-memory handlers that record calls."""

    def rag(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(seen("rag", request, body))
        if request.url.path.endswith("/embed"):
            return httpx.Response(200, json={"kb": "kb", "model": "m", "vectors": [
                [1.0, 0.0] for _ in body["texts"]]})  # fmt: skip
        citation = {"n": 1, "source": "notes.md", "chunk_id": "c1", "score": 0.9, "text": CONTEXT}
        return httpx.Response(200, json={
            "kb": "kb", "question": body["question"], "answer": "harbor-seventeen [1]",
            "model": body.get("model") or "external", "citations": [citation],
        })  # fmt: skip

    def chat(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(seen("chat", request, body))
        return httpx.Response(200, json={"choices": [{"message": {"content": "no idea"}}]})

    return Router(
        RagClient("http://rag", "token", transport=httpx.MockTransport(rag)),
        ChatClient("http://lora/v1", "token", transport=httpx.MockTransport(chat)),
    )


def minion(training_type: str = "LOCAL_HYBRID") -> dict[str, Any]:
    return {"name": "ada", "owner": "alice", "training_type": training_type, "kb": "ada-kb",
            "adapter": "ada:2", "best_variant": "rag"}  # fmt: skip


@pytest.mark.parametrize(
    ("training_type", "variant", "expected"),
    [
        ("LOCAL_HYBRID", "rag", {"to": "rag", "llm": "local", "model": "base"}),
        ("EXTERNAL_HYBRID", "rag", {"to": "rag", "llm": "external"}),
        ("EXTERNAL_HYBRID", "lora+rag", {"to": "rag", "llm": "local", "model": "ada:2"}),
        ("LOCAL_HYBRID", "lora", {"to": "chat", "model": "ada:2"}),
    ],
)
async def test_each_variant_asks_its_service_and_model_for_the_minions_owner(
    training_type, variant, expected
):
    calls: list[dict[str, Any]] = []
    router = fake_services(calls)
    reply = await router.ask(minion(training_type), "What is staging called?", variant)
    [call] = calls
    assert {k: call.get(k) for k in expected} == expected and call["owner"] == "alice"
    if call["to"] == "rag":
        assert call["path"] == "/v1/kbs/ada-kb/answer"
        assert ("model" in call) == ("model" in expected)  # the external model is the service's
        assert reply.sources == [{"n": 1, "source": "notes.md", "title": None, "text": CONTEXT}]
    else:
        assert call["path"] == "/v1/chat/completions" and reply.sources == []
    await router.close()


async def test_scores_credit_answers_and_context_that_held_the_answer():
    calls: list[dict[str, Any]] = []
    router = fake_services(calls)
    pairs = [("What is staging called?", "harbor-seventeen")]
    scores = await router.score(minion(), pairs)
    # retrieving variants: F1 of "harbor-seventeen [1]" (2 of 2 tokens: citations do not count)
    # and a grounded context
    assert scores["rag"] == scores["lora+rag"] == scores["extractive"] == 1.0
    assert scores["lora"] == 0.0  # "no idea"
    assert await router.base_score(minion(), pairs) == 0.0
    assert calls[-1]["to"] == "chat" and calls[-1]["model"] == "base"
    await router.close()


async def test_a_minion_without_an_adapter_answers_only_through_rag():
    router = fake_services([])
    with pytest.raises(ValueError, match="no adapter"):
        await router.ask({**minion(), "adapter": None}, "q?", "lora")
    await router.close()
