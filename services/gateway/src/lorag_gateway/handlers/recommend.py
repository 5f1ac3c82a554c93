"""Recommendations with resource estimates for a dataset in object storage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

from psycopg_pool import AsyncConnectionPool

from lorag_core.storage import ObjectStore, parse_s3_uri
from lorag_gateway.errors import Invalid
from lorag_hybrid.recommend import history, models
from lorag_hybrid.recommend.profile import profile
from lorag_hybrid.recommend.rank import Goal, rank
from lorag_hybrid.recommend.resources import detect


def _files(objects: ObjectStore, uri: str, budget: int) -> Iterator[tuple[str, bytes]]:
    """The dataset's files, up to `budget` bytes in all (enough to profile it)."""
    bucket, prefix = parse_s3_uri(uri)
    for key in objects.list_keys(bucket, prefix):
        data = objects.get_bytes(bucket, key, require_digest=False)
        yield key, data
        budget -= len(data)
        if budget <= 0:
            return


async def recommend(
    db: AsyncConnectionPool, objects: ObjectStore, uri: str, *, max_bytes: int,
    target: Literal["external", "local"] = "external", private: bool = False,
    budget_usd: float | None = None, base_model: str | None = None, epochs: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """Every training type ranked for the dataset: score, reasons, memory, time and cost."""
    try:
        model = models.resolve(base_model)
    except ValueError as exc:
        raise Invalid.field(("body", "base_model"), str(exc)) from None
    found = await asyncio.to_thread(lambda: profile(_files(objects, uri, max_bytes)))
    if found.records == 0:
        raise Invalid.field(
            ("body", "dataset"), f"{uri} holds no readable records (JSONL, CSV, Markdown or text)"
        )
    async with db.connection() as conn:
        past = await history.notes_for(conn, found)
    machine = detect()
    goal = Goal(target=target, private=private, budget_usd=budget_usd, epochs=epochs)
    ranked = rank(found, goal, model, machine, history=past)
    return {
        "dataset": uri,
        "profile": found.as_dict(),
        "resources": machine.as_dict(),
        "model": model.name,
        "recommendations": [r.as_dict() for r in ranked],
    }
