"""Evaluation pairs of a hybrid: question/answer rows of its dataset, read from object storage."""

from __future__ import annotations

import json
from collections.abc import Iterator

from lorag_core.contracts import JobRequested
from lorag_core.storage import ObjectStore, parse_s3_uri
from lorag_hybrid.recommend.profile import DatasetProfile, profile
from lorag_hybrid.saga.plan import parameters


def eval_pairs(request: JobRequested, objects: ObjectStore, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` (question, answer) pairs from the dataset's JSONL files."""
    rag = parameters(request).rag
    pairs: list[tuple[str, str]] = []
    for ref in request.datasets:
        bucket, prefix = parse_s3_uri(ref.uri)
        for key in objects.list_keys(bucket, prefix):
            if not key.endswith(".jsonl") or len(pairs) >= limit:
                continue
            for line in (
                objects.get_bytes(bucket, key, require_digest=False)
                .decode(errors="replace")
                .splitlines()
            ):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                q, a = row.get(rag.question_field), row.get(rag.answer_field)
                if isinstance(q, str) and isinstance(a, str) and len(pairs) < limit:
                    pairs.append((q, a))
    return pairs


def profile_of(request: JobRequested, objects: ObjectStore) -> DatasetProfile:
    """The recommender's profile of the job's dataset, for the outcome it will be filed under."""

    def files() -> Iterator[tuple[str, bytes]]:
        for ref in request.datasets:
            bucket, prefix = parse_s3_uri(ref.uri)
            for key in objects.list_keys(bucket, prefix):
                yield key, objects.get_bytes(bucket, key, require_digest=False)

    return profile(files())
