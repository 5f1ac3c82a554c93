"""What worked before: measured outcomes of finished hybrids, turned into recommender notes."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from lorag_core.domain.training_types import TrainingType
from lorag_hybrid.recommend.profile import DatasetProfile

# Which training type each routing variant stands for.
TYPES_OF_VARIANT = {
    "rag": (TrainingType.EXTERNAL_RAG,),
    "lora": (TrainingType.LOCAL_LORA,),
    "lora+rag": (TrainingType.LOCAL_HYBRID, TrainingType.EXTERNAL_HYBRID),
}
SIMILAR_SIZE = 10  # datasets within 10x of each other's tokens count as similar


async def record(
    conn: AsyncConnection[Any],
    job_id: str,
    profile: DatasetProfile,
    scores: dict[str, float],
    seconds: float,
) -> None:
    await conn.execute(
        "INSERT INTO training_outcomes (job_id, shape, tokens, profile, scores, seconds)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (job_id) DO NOTHING",
        (
            job_id,
            profile.shape.value,
            profile.tokens,
            Jsonb(profile.as_dict()),
            Jsonb(scores),
            seconds,
        ),
    )


async def notes_for(conn: AsyncConnection[Any], profile: DatasetProfile) -> dict[TrainingType, str]:
    """'+reason' for the variant that did best on similar datasets, '-reason' for the worst."""
    cur = await conn.execute(
        "SELECT job_id, scores FROM training_outcomes WHERE shape = %s"
        " AND tokens BETWEEN %s AND %s ORDER BY created_at DESC LIMIT 20",
        (profile.shape.value, profile.tokens // SIMILAR_SIZE, profile.tokens * SIMILAR_SIZE),
    )
    rows = await cur.fetchall()
    if not rows:
        return {}
    totals: dict[str, list[float]] = {}
    for row in rows:
        for variant, score in row["scores"].items():
            totals.setdefault(variant, []).append(float(score))
    means = {v: sum(s) / len(s) for v, s in totals.items() if v in TYPES_OF_VARIANT}
    if len(means) < 2:
        return {}
    best, worst = max(means, key=means.__getitem__), min(means, key=means.__getitem__)
    said = f"on {len(rows)} similar past dataset(s) ({profile.shape.value})"
    notes: dict[TrainingType, str] = {}
    for t in TYPES_OF_VARIANT[best]:
        notes[t] = f"+worked best {said}: {best} scored {means[best]:.2f}"
    for t in TYPES_OF_VARIANT[worst]:
        notes[t] = f"-did worst {said}: {worst} scored {means[worst]:.2f}"
    return notes
