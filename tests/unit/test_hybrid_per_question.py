"""Per-question routing and degenerate answers: the variant that did best on questions like this
one answers, and a repeating or unsourced generation gives way to the next variant."""

from __future__ import annotations

import json

import httpx

from lorag_api.lora import ChatClient
from lorag_api.rag import RagClient
from lorag_hybrid.per_question import predict
from lorag_hybrid.quality import degenerate
from lorag_hybrid.routing import Router

FACTS = "The staging cluster is called harbor-seventeen. Deploys need two approvals."
HOW_TO = "Restart the worker, then drain the queue, then page the owner."


def kind(question: str) -> list[float]:
    """A fake embedding: fact questions ("What ...") and how-to questions point apart."""
    return [1.0, 0.1] if question.lower().startswith("what") else [0.1, 1.0]


def services(lora_text: str = "no idea") -> Router:
    """rag-service: extraction quotes the facts passage; the LLM (rag) writes the how-to well and
    loops on facts. The adapter alone says `lora_text`."""

    def rag(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        path = request.url.path
        if path.endswith("/embed"):
            vectors = [kind(t) for t in body["texts"]]
            return httpx.Response(200, json={"kb": "kb", "model": "m", "vectors": vectors})
        if path.endswith("/query"):
            hit = {"rank": 1, "score": 0.9, "id": "c1", "text": FACTS}
            return httpx.Response(200, json={"kb": "kb", "question": body["question"],
                                             "hits": [hit]})  # fmt: skip
        facts = body["question"].lower().startswith("what")
        passage = FACTS if facts else HOW_TO
        if path.endswith("/extract"):
            text = f"{FACTS.split('. ')[0]}. [1]"  # quotes the facts, whatever the question
        elif body.get("model", "base") == "base" and not facts:
            text = "Restart the worker, drain the queue, page the owner [1]"
        else:
            text = "checkpoint checkpoint checkpoint checkpoint checkpoint checkpoint"
        citation = {"n": 1, "source": "ops.md", "chunk_id": "c1", "score": 0.9, "text": passage}
        return httpx.Response(200, json={"kb": "kb", "question": body["question"], "answer": text,
                                         "model": "m", "citations": [citation]})  # fmt: skip

    def chat(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"message": {"content": lora_text}}]})

    return Router(
        RagClient("http://rag", "t", transport=httpx.MockTransport(rag)),
        ChatClient("http://lora/v1", "t", transport=httpx.MockTransport(chat)),
    )


MINION = {"name": "ops", "owner": "alice", "training_type": "LOCAL_HYBRID", "kb": "ops",
          "adapter": "ops:1"}  # fmt: skip
PAIRS = [
    ("What is the staging cluster called?", "harbor-seventeen"),
    ("What is the staging cluster named?", "The staging cluster is called harbor-seventeen"),
    ("How do I recover a stuck worker?", "restart the worker, drain the queue, page the owner"),
    ("How do I unstick the queue?", "restart the worker then drain the queue"),
]


async def test_two_kinds_of_questions_get_two_different_winning_variants():
    router = services()
    evaluation = await router.evaluate(MINION, PAIRS, embed=True)
    assert all(q["vector"] for q in evaluation.questions)
    minion = {**MINION, "scores": evaluation.scores, "evaluations": evaluation.questions}

    fact = await router.route(minion, "What is the production cluster called?")
    how_to = await router.route(minion, "How do I restart the deploy pipeline?")

    assert fact.reply.variant == "extractive" and "harbor-seventeen" in fact.reply.text
    assert how_to.reply.variant == "rag" and "drain the queue" in how_to.reply.text
    for routed in (fact, how_to):
        assert routed.prediction.basis == "nearest evaluated questions"
        assert max(routed.prediction.scores, key=routed.prediction.scores.__getitem__) == (
            routed.reply.variant
        )
    assert fact.prediction.neighbours[0]["question"].startswith("What")
    await router.close()


async def test_a_degenerate_generation_scores_nothing_and_is_routed_away_from():
    router = services(lora_text="checkpoint checkpoint checkpoint checkpoint checkpoint")
    evaluation = await router.evaluate(MINION, PAIRS, embed=True)
    # rag and lora+rag loop on fact questions; lora always loops
    assert evaluation.questions[0]["scores"]["rag"] == 0.0
    assert evaluation.scores["lora"] == 0.0
    # a minion evaluated before the LLM started looping still predicts lora+rag for facts ...
    stale = [
        {**q, "scores": {"lora+rag": 1.0, "extractive": 0.5, "rag": 0.0, "lora": 0.0}}
        for q in evaluation.questions
    ]
    routed = await router.route({**MINION, "evaluations": stale}, "What is staging called?")
    # ... and is routed away from its looping answer to the next best variant
    assert routed.reply.variant == "extractive"
    assert routed.rejected[0]["variant"] == "lora+rag"
    assert routed.rejected[0]["reason"].startswith("repetition")
    await router.close()


def test_degenerate_answers_are_named():
    assert degenerate("checkpoint " * 12).startswith("repetition")
    assert degenerate("the cluster the cluster the cluster the cluster the cluster").startswith(
        "repetition"
    )
    assert degenerate("Bananas grow on trees [1]", [FACTS]) == "no overlap with the sources"
    assert degenerate("It is called harbor-seventeen [1]", [FACTS]) is None
    assert degenerate("  [1] ") == "empty"
    assert degenerate("harbor-seventeen") is None  # short and sourceless: nothing to judge


def test_without_evaluated_questions_the_overall_scores_route():
    overall = {"rag": 0.4, "extractive": 0.6}
    prediction = predict([1.0, 0.0], [], overall)
    assert prediction.basis == "overall scores"
    assert prediction.ranked(("extractive", "rag")) == ["extractive", "rag"]
