"""Event contracts: strict, frozen, versioned, and their schema files kept in step."""

import pytest
from pydantic import ValidationError

from lorag_core.contracts import (
    EVENTS,
    JobError,
    JobProgress,
    JobRequested,
    LoraParameters,
    RagParameters,
)
from lorag_core.contracts.schemas import SCHEMA_DIR, render_schemas
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import LegacyTrainingType, TrainingType

DATASET = [{"uri": "s3://lorag-datasets/x/"}]


def test_schema_files_match_the_contracts():
    """Change a contract and this fails until `python -m lorag_core.contracts.schemas` is run."""
    rendered = render_schemas()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.json")}
    assert set(on_disk) == set(rendered), "schema files and contracts differ in names"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} is stale: run python -m lorag_core.contracts.schemas"


@pytest.mark.parametrize("event", EVENTS)
def test_every_field_is_documented(event):
    for name, field in event.model_fields.items():
        assert field.description, f"{event.__name__}.{name} has no description"


def test_events_are_frozen_and_refuse_unknown_fields():
    event = JobRequested(job_id="j-1", training_type="EXTERNAL_RAG", datasets=DATASET)
    with pytest.raises(ValidationError):
        event.job_id = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        JobRequested(job_id="j-1", training_type="EXTERNAL_RAG", datasets=DATASET, colour="red")


def test_unknown_schema_version_is_refused():
    with pytest.raises(ValidationError, match="schema_version"):
        JobRequested(job_id="j-1", training_type="EXTERNAL_RAG", datasets=DATASET, schema_version=2)


def test_legacy_type_keeps_requested_and_effective():
    event = JobRequested(job_id="j-1", training_type="LORA", datasets=DATASET)
    assert event.training_type is LegacyTrainingType.LORA
    assert event.resolved.effective is TrainingType.LOCAL_LORA
    assert isinstance(event.effective_parameters, LoraParameters)
    roundtrip = JobRequested.model_validate_json(event.to_bytes())
    assert roundtrip == event


def test_parameters_must_fit_the_type():
    with pytest.raises(ValidationError, match="do not fit EXTERNAL_RAG"):
        JobRequested(
            job_id="j-1", training_type="RAG", datasets=DATASET, parameters=LoraParameters()
        )
    ok = JobRequested(
        job_id="j-1", training_type="RAG", datasets=DATASET, parameters=RagParameters(kb="docs")
    )
    assert ok.effective_parameters.kb == "docs"  # type: ignore[attr-defined]


def test_unknown_type_missing_fields_and_bad_ids_are_refused():
    with pytest.raises(ValidationError):
        JobRequested(job_id="j-1", training_type="QUANTUM", datasets=DATASET)
    with pytest.raises(ValidationError):
        JobRequested(job_id="j-1", training_type="RAG")  # no dataset
    with pytest.raises(ValidationError):
        JobRequested(job_id="../etc/passwd", training_type="RAG", datasets=DATASET)


def test_progress_outcome_must_match_state():
    with pytest.raises(ValidationError, match="needs an error"):
        JobProgress(job_id="j", seq=3, state=JobState.FAILED, producer="t")
    with pytest.raises(ValidationError, match="result is only allowed"):
        JobProgress(job_id="j", seq=3, state=JobState.RUNNING, producer="t", result={})
    failed = JobProgress(
        job_id="j",
        seq=3,
        state=JobState.FAILED,
        producer="t",
        error=JobError(code="DATASET_EMPTY", message="no rows"),
    )
    assert failed.error.code == "DATASET_EMPTY"


def test_rag_overlap_must_be_smaller_than_chunk():
    with pytest.raises(ValidationError, match="chunk_overlap"):
        RagParameters(chunk_tokens=64, chunk_overlap=64)
