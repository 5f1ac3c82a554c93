"""The legacy job mapping: every type and status, and the bad configs the old system let through."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lorag_core.contracts.jobs import JobRequested
from lorag_core.contracts.parameters import HybridParameters, LoraParameters, RagParameters
from lorag_core.domain.job_state import JobState
from lorag_migration.domain.legacy import Converted, LegacyJob, Unconvertible, convert

WHEN = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
D = {"dataset_path": "/d"}


def row(type_="RAG", status="pending", config=None, **kw) -> LegacyJob:
    config = {"dataset_path": "/data/faq.jsonl"} if config is None else config
    fields = dict(id="7f9c", minion_id=None, type=type_, status=status, config=config,
                  error_message=None, created_at=WHEN, updated_at=WHEN)  # fmt: skip
    return LegacyJob(**{**fields, **kw})


def converted(legacy: LegacyJob) -> Converted:
    result = convert(legacy)
    assert isinstance(result, Converted), result
    return result


def reason(legacy: LegacyJob) -> str:
    result = convert(legacy)
    assert isinstance(result, Unconvertible), result
    return result.reason


def test_rag_keys_are_renamed_and_the_request_round_trips():
    config = {"dataset_uri": "s3://old/faq/", "chunk_size": 512, "chunk_overlap": 64,
              "collection": "faq-kb", "embedding_model": "bge-small", "priority": 3}  # fmt: skip
    c = converted(row(config=config, minion_id="m1"))
    assert c.job_id == "legacy-7f9c" and c.state is JobState.QUEUED and c.error is None
    assert c.request.parameters == RagParameters(
        chunk_tokens=512, chunk_overlap=64, kb="faq-kb", embedding_model="bge-small"
    )
    assert c.request.resolved.effective.value == "EXTERNAL_RAG"
    assert c.request.training_type.value == "RAG" and c.request.minion_id == "m1"
    assert JobRequested.model_validate(c.request.model_dump(mode="json")) == c.request


def test_lora_accepts_numeric_strings_as_the_old_ui_stored_them():
    config = {**D, "lora_r": "16", "lora_alpha": 32, "learning_rate": 1e-4, "epochs": None,
              "target_modules": ["q_proj", "v_proj"], "adapter_name": "faq"}  # fmt: skip
    params = converted(row("lora", config=config)).request.parameters
    assert params == LoraParameters(
        r=16, alpha=32, lr=1e-4, target_modules=("q_proj", "v_proj"), adapter="faq"
    )


def test_hybrid_splits_its_config_between_stages():
    config = {**D, "chunk_size": 128, "lora_r": 4, "minion_name": "helper"}
    params = converted(row("HYBRID", config=config)).request.parameters
    assert isinstance(params, HybridParameters) and params.minion == "helper"
    assert params.rag.chunk_tokens == 128 and params.lora.r == 4


def test_fine_tuning_maps_to_local_fine_tuning():
    c = converted(row("FINE_TUNING", config={**D, "base_model": "smol", "epochs": 2}))
    assert c.request.resolved.effective.value == "LOCAL_FINE_TUNING"
    assert c.request.parameters.epochs == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "state", "code", "retryable"),
    [("pending", JobState.QUEUED, None, None), ("done", JobState.SUCCEEDED, None, None),
     ("error", JobState.FAILED, "LEGACY_FAILED", False),
     ("failed", JobState.FAILED, "LEGACY_FAILED", False),
     ("running", JobState.FAILED, "LEGACY_INTERRUPTED", True),
     ("cancelled", JobState.CANCELLED, None, None)],
)  # fmt: skip
def test_statuses(status, state, code, retryable):
    c = converted(row(status=status, error_message="CUDA out of memory"))
    assert c.state is state
    assert (c.error.code if c.error else None) == code
    assert (c.error.retryable if c.error else None) == retryable
    if status in ("error", "failed"):
        assert c.error and c.error.message == "CUDA out of memory"


def test_the_same_row_converts_to_the_identical_request():
    assert converted(row()).request == converted(row()).request


@pytest.mark.parametrize(
    ("legacy", "expected"),
    [
        (row(config={"chunk_size": 256}), "missing dataset"),
        (row(config={"dataset_path": ""}), "missing dataset"),
        (row(config={"dataset_path": "/a", "dataset_uri": "/b"}), "ambiguous dataset"),
        (row(config={**D, "chunk_sise": 256}), "unknown config keys for RAG: chunk_sise"),
        (row("LORA", config={**D, "chunk_size": 1}), "unknown config keys"),
        (row(config={**D, "chunk_size": "large"}), "chunk_tokens"),
        (row(config={**D, "chunk_size": 64, "chunk_overlap": 64}), "chunk_overlap"),
        (row("LORA", config={**D, "lora_r": 3.5}), "invalid LoraParameters: r"),
        (row("LORA", config={**D, "epochs": [1]}), "epochs"),
        (row(config={"dataset_path": 42}), "invalid DatasetRef: uri"),
        (row(config=["dataset_path", "/d"]), "config is not a JSON object but list"),
        (row(config="oops"), "config is not a JSON object but str"),
        (row("SUMMARISE"), "unknown legacy type 'SUMMARISE'"),
        (row(status="paused"), "unknown legacy status 'paused'"),
        (row(id="has space"), "invalid job request: job_id"),
    ],
)  # fmt: skip
def test_bad_rows_are_unconvertible_with_a_reason(legacy, expected):
    assert expected in reason(legacy)


def test_a_long_legacy_error_is_cut_to_what_the_contract_holds():
    c = converted(row(status="error", error_message="x" * 10_000))
    assert c.error is not None and len(c.error.message) == 4000
