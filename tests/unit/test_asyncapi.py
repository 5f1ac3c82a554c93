"""The AsyncAPI document of the topics: complete, self-consistent, and what services serve."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from lorag_core.contracts.asyncapi import asyncapi_document
from lorag_core.messaging.topics import ALL_TOPICS
from lorag_core.service.api import service_app


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def resolve(doc: dict[str, Any], pointer: str) -> Any:
    node: Any = doc
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_topic_is_a_channel_with_its_payload():
    doc = asyncapi_document()
    assert doc["asyncapi"] == "3.0.0"
    assert {c["address"] for c in doc["channels"].values()} == set(ALL_TOPICS)
    requested = doc["components"]["schemas"]["JobRequested"]
    assert {"job_id", "training_type", "datasets"} <= set(requested["required"])
    assert doc["operations"]["receive-job.requested"]["action"] == "receive"


def test_every_reference_resolves():
    doc = asyncapi_document()
    found = refs(doc)
    assert len(found) > 30
    for ref in found:
        assert resolve(doc, ref) is not None, ref


def test_services_serve_it():
    async def ready() -> dict[str, object]:
        return {}

    client = TestClient(service_app("test-service", ready, "token"))
    assert client.get("/asyncapi.json").json() == asyncapi_document()
