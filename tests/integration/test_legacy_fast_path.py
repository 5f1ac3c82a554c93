"""The SQL fast path of the legacy conversion against the Python/pydantic conversion, row by row.

Every row the server calls plainly valid must be one Python converts, to the same job: the same
request (as the contract reads it back), state, error, message and dates. Rows the server calls
doubtful are not judged here; Python judges them in the real run. The rows live in a temporary
copy of the legacy table, so this module never touches the shared one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from lorag_core.contracts.jobs import JobError, JobRequested
from lorag_migration.adapters.fast_path import FAST, JOB_SELECT, KEYS, PARAMS
from lorag_migration.domain.legacy import Converted, LegacyJob, convert

pytestmark = pytest.mark.integration

WHEN = datetime(2023, 5, 1, 12, 0, tzinfo=UTC)
# (type, status, config, plainly valid?) — None: either answer is allowed, only agreement matters
CASES: list[tuple[str, str, object, bool | None]] = [
    ("RAG", "pending", {"dataset_path": "/d/x.jsonl"}, True),
    ("RAG", "done", {"dataset_uri": "s3://b/k/", "chunk_size": "512", "collection": "kb-1"}, True),
    ("RAG", "error", {"dataset_path": "/d", "chunk_size": 128, "chunk_overlap": 0}, True),
    ("RAG", "failed", {"dataset_path": "/d", "chunk_size": 2.0, "chunk_overlap": "8"}, None),
    ("RAG", "running", {"dataset_path": "/d", "dataset_uri": "/d", "dataset_format": "csv"}, True),
    ("RAG", "cancelled", {"dataset_path": "", "dataset_uri": "s3://x", "text_field": "t"}, True),
    ("RAG", "done", {"dataset_path": "/d", "chunk_size": 16, "chunk_overlap": 32}, False),
    ("RAG", "done", {"dataset_path": "/d", "collection": "bad name"}, False),
    ("RAG", "done", {"dataset_path": "/d", "chunk_size": "0512"}, None),
    ("RAG", "done", {"dataset_path": "/d", "chunk_size": None, "eval_file": "s3://e"}, True),
    ("RAG", "done", {"dataset_path": "/d", "embedding_model": 7}, False),
    ("RAG", "done", {"dataset_path": "/d", "dataset_format": 3}, False),
    ("RAG", "done", {"dataset_path": "/a", "dataset_uri": "/b"}, False),
    (
        "LORA",
        "running",
        {
            "dataset_uri": "s3://o/1",
            "lora_r": 8,
            "learning_rate": 0.0002,
            "target_modules": ["q"],
            "priority": 3,
        },
        True,
    ),
    (
        "LORA",
        "done",
        {
            "dataset_uri": "s3://o/1",
            "lora_alpha": "32",
            "lora_dropout": 0,
            "epochs": 2.5,
            "seed": 7,
            "adapter_name": "a.b-c",
        },
        True,
    ),
    ("LORA", "done", {"dataset_uri": "s3://o/1", "learning_rate": "1e-4"}, None),
    ("LORA", "done", {"dataset_uri": "s3://o/1", "learning_rate": 1}, False),
    ("LORA", "done", {"dataset_uri": "s3://o/1", "lora_r": True}, None),
    ("LORA", "done", {"dataset_uri": "s3://o/1", "target_modules": ["q", 1]}, False),
    ("LORA", "done", {"dataset_uri": "s3://o/1", "max_steps": 10**12}, None),
    ("LORA", "done", {"dataset_uri": "s3://o/1", "lora_alpha": 1e300}, None),
    ("LORA", "done", {"dataset_uri": "s3://o/1", "target_modules": []}, True),
    ("FINE_TUNING", "failed", {"dataset_path": "/d", "epochs": 2, "base_model": "smol"}, True),
    ("FINE_TUNING", "done", {"dataset_path": "/d", "batch_size": "16", "max_seq_length": 64}, True),
    ("FINE_TUNING", "done", {"dataset_path": "/d", "lora_r": 8}, False),
    (
        "HYBRID",
        "pending",
        {
            "dataset_uri": "s3://o/2",
            "chunk_size": "512",
            "lora_r": 16,
            "minion_name": "minion-1",
            "llm_model": "gpt",
        },
        True,
    ),
    ("HYBRID", "running", {"dataset_uri": "s3://o/2", "chunk_overlap": 300}, False),
    ("HYBRID", "done", {"dataset_uri": "s3://o/2", "minion_name": "-bad"}, False),
    ("rag", "done", {"dataset_path": "/d"}, None),
    (" RAG ", "DONE", {"dataset_path": "/d"}, None),
    ("RAG", "archived", {"dataset_path": "/d"}, False),
    ("LORA", "done", ["not", "an", "object"], False),
    ("RAG", "done", {"dataset_path": "/d", "gpu": "a100"}, False),
]


def legacy_row(i: int, type_: str, status: str, config: object) -> LegacyJob:
    error = "" if i % 3 == 0 else ("x" * 5000 if i % 3 == 1 else None)
    created = WHEN + timedelta(minutes=i, microseconds=0 if i % 2 else 250_000)
    minion = None if i % 2 else f"m-{i}"
    return LegacyJob(f"fast-{i:03d}", minion, type_, status, config, error, created,
                     created + timedelta(hours=1))  # fmt: skip


@pytest.fixture(scope="module")
def judged(settings) -> list[tuple[LegacyJob, bool, dict | None, bool | None]]:
    """Each case's row, whether the server calls it plain, what the server makes of it."""
    rows = [(legacy_row(i, *case[:3]), case[3]) for i, case in enumerate(CASES)]
    with psycopg.connect(settings.postgres_dsn, row_factory=dict_row) as conn:
        conn.execute("CREATE TEMP TABLE probe (LIKE legacy_training_jobs)")
        with conn.cursor().copy("COPY probe FROM STDIN") as copy:
            for row, _ in rows:
                copy.write_row((row.id, row.minion_id, row.type, row.status,
                                json.dumps(row.config), row.error_message, row.created_at,
                                row.updated_at))  # fmt: skip
        sql = (f"SELECT l.id, {FAST} AS fast, CASE WHEN {FAST} THEN jsonb_build_object("
               f"'row', (SELECT to_jsonb(j) FROM (SELECT {JOB_SELECT}) j)) END AS job"
               f" FROM probe l {KEYS} CROSS JOIN LATERAL (SELECT CASE WHEN {FAST}"
               f" THEN {PARAMS} END AS params) p ORDER BY l.id")  # fmt: skip
        found = {r["id"]: r for r in conn.execute(sql).fetchall()}
    return [(row, found[row.id]["fast"], (found[row.id]["job"] or {}).get("row"), expected)
            for row, expected in rows]  # fmt: skip


def test_every_case_is_judged_as_expected(judged):
    wrong = [(row.type, row.status, row.config, fast) for row, fast, _, expected in judged
             if expected is not None and fast != expected]  # fmt: skip
    assert not wrong


def test_a_plain_row_becomes_the_job_python_makes(judged):
    for row, fast, job, _ in judged:
        if not fast:
            continue
        python = convert(row)
        assert isinstance(python, Converted), (row, python)
        assert job is not None
        assert JobRequested.model_validate(job["request"]) == python.request, row
        resolved = python.request.resolved
        assert (job["requested_type"], job["effective_type"]) == (
            resolved.requested.value, resolved.effective.value)  # fmt: skip
        assert job["state"] == python.state.value
        assert job["owner"] == "default" and job["minion_id"] == row.minion_id
        error = JobError.model_validate(job["error"]) if job["error"] else None
        assert error == python.error
        assert job["message"] == f"converted from legacy job {row.id} (status {row.status})"
        finished = datetime.fromisoformat(job["finished_at"]) if job["finished_at"] else None
        assert finished == (row.updated_at if python.state.is_terminal else None)
        assert datetime.fromisoformat(job["requested_at"]) == row.created_at


def test_a_row_python_refuses_is_never_plain(judged):
    for row, fast, _, _ in judged:
        if not isinstance(convert(row), Converted):
            assert not fast, row
