"""Measured outcomes of past jobs feed the recommender, and its reasons say so.

The outcomes here are written with `history.record`, the call a finished hybrid makes;
test_hybrid's first test shows a real finished hybrid writing its own.
"""

import json
import uuid

import pytest

from lorag_core.domain.training_types import TrainingType
from lorag_hybrid.recommend import history, models
from lorag_hybrid.recommend.profile import profile
from lorag_hybrid.recommend.rank import Goal, rank
from lorag_hybrid.recommend.resources import Resources
from tests.support.gateway import start_gateway
from tests.support.processes import start_service

pytestmark = pytest.mark.integration
ROWS = [{"question": f"Which bin holds part {i}?", "answer": f"Bin {i % 7}."} for i in range(800)]


@pytest.fixture(scope="module")
def recommending(settings, logs_dir):
    """The orchestrator (it recommends) behind a gateway, for `lorag recommend`."""
    orchestrator = start_service("lorag_hybrid", logs_dir, LORAG_HYBRID_WARM_UP="false")
    gateway = start_gateway(logs_dir, orchestrator)
    yield gateway
    gateway.process.stop()
    orchestrator.stop()


async def test_what_worked_on_similar_datasets_moves_the_ranking(settings, tmp_path, recommending):
    import psycopg
    from psycopg.rows import dict_row

    data = "\n".join(json.dumps(r) for r in ROWS).encode()
    found = profile([("parts.jsonl", data)])
    async with await psycopg.AsyncConnection.connect(
        settings.postgres_dsn, autocommit=True, row_factory=dict_row
    ) as conn:
        await conn.execute("DELETE FROM training_outcomes WHERE shape = %s", (found.shape.value,))
        for _ in range(2):
            scores = {"rag": 0.2, "lora": 0.9, "lora+rag": 0.4}
            await history.record(conn, f"job-past-{uuid.uuid4().hex[:8]}", found, scores, 12.0)
        notes = await history.notes_for(conn, found)
    assert notes[TrainingType.LOCAL_LORA].startswith("+worked best on 2 similar")
    assert notes[TrainingType.EXTERNAL_RAG].startswith("-")
    machine = Resources(cpu_cores=2, memory_bytes=24 * 2**30)
    without = {r.training_type: r.score for r in rank(found, Goal(), models.TINY, machine)}
    ranked = {r.training_type: r for r in rank(found, Goal(), models.TINY, machine, history=notes)}
    assert ranked[TrainingType.LOCAL_LORA].score == without[TrainingType.LOCAL_LORA] + 10
    assert any("similar past dataset" in r for r in ranked[TrainingType.LOCAL_LORA].reasons)

    (tmp_path / "parts.jsonl").write_bytes(data)
    shown = recommending.cli("recommend", "--dataset", str(tmp_path), "--json")
    assert shown.returncode == 0, shown.stderr
    recs = {r["training_type"]: r for r in json.loads(shown.stdout)["recommendations"]}
    assert any("similar past dataset" in r for r in recs["LOCAL_LORA"]["reasons"])
