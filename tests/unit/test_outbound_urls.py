"""No job parameter is a URL a service would fetch: every string a job carries is classified,
models are names (endpoints are settings), and data comes from s3:// or an allowed path only.

A new string parameter fails `test_every_string_parameter_is_classified` until it is added to
KINDS below with what a service does with it.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from lorag_core.contracts import DatasetRef, HybridParameters, JobRequested, RagParameters
from lorag_core.contracts.jobs import PARAMETERS_BY_TYPE
from lorag_core.domain.datasets import job_refusal, refusal

# What a service does with each string a job can carry; "name": an identifier, never opened;
# "model": a hub id or folder of a model (a URL is refused); "data": read through the dataset
# rules (s3:// in the datasets bucket, or a path under an allowed root).
KINDS = {
    "kind": "name", "kb": "name", "adapter": "name", "minion": "name", "text_field": "name",
    "question_field": "name", "answer_field": "name", "on_bad_file": "name",
    "target_modules": "name", "embedding_model": "model", "base_model": "model",
    "llm_model": "model", "eval_file": "data",
}  # fmt: skip
URLISH = ("url", "endpoint", "host", "webhook", "callback", "api_base", "base")


def string_fields(model: type[BaseModel], path: str = "") -> dict[str, Any]:
    """Every field of a model (nested models too) whose values include strings."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = repr(field.annotation)
        nested = field.annotation if isinstance(field.annotation, type) else None
        if nested is not None and issubclass(nested, BaseModel):
            found |= string_fields(nested, f"{path}{name}.")
        elif "str" in annotation or "Literal" in annotation:
            found[f"{path}{name}"] = name
    return found


@pytest.mark.parametrize("model", sorted(set(PARAMETERS_BY_TYPE.values()), key=str))
def test_every_string_parameter_is_classified(model):
    for dotted, name in string_fields(model).items():
        assert name in KINDS, f"{model.__name__}.{dotted}: classify it in KINDS (is it fetched?)"
        assert not any(word in name.lower() for word in URLISH if word != "base") or (
            KINDS[name] == "model"
        ), f"{dotted} looks like an address: endpoints are settings, not job parameters"


@pytest.mark.parametrize("model", sorted(set(PARAMETERS_BY_TYPE.values()), key=str))
def test_no_model_parameter_takes_a_url(model):
    for dotted, name in string_fields(model).items():
        if KINDS[name] != "model" or "." in dotted:
            continue
        with pytest.raises(ValidationError, match="endpoints are settings"):
            model.model_validate({name: "http://169.254.169.254/latest/meta-data"})


@pytest.mark.parametrize(
    "uri", ["http://evil.example/x.jsonl", "https://a/b", "file:///etc/passwd", "gs://b/k"]
)
def test_data_is_never_read_from_a_url(uri):
    with pytest.raises(ValidationError, match="only s3://"):
        DatasetRef(uri=uri)
    with pytest.raises(ValidationError, match="only s3://"):
        RagParameters(eval_file=uri)
    with pytest.raises(ValidationError, match="only s3://"):
        HybridParameters.model_validate({"rag": {"eval_file": uri}})


def job(uri: str, owner: str = "alice", eval_file: str | None = None) -> JobRequested:
    params = RagParameters(eval_file=eval_file) if eval_file else None
    return JobRequested(
        job_id="job-1", training_type="EXTERNAL_RAG", owner=owner,
        datasets=(DatasetRef(uri=uri),), parameters=params,
    )  # fmt: skip


def test_services_refuse_other_buckets_and_other_owners_uploads():
    assert job_refusal(job("s3://lorag-datasets/uploads/alice/ds-1/")) is None
    assert job_refusal(job("s3://lorag-datasets/staged/corpus/")) is None  # tools stage here
    assert job_refusal(job("/srv/data/corpus")) is None  # the service checks its allowed roots
    cases = {
        "s3://lorag-datasets/uploads/bob/ds-1/": "DATASET_NOT_FOUND",
        "s3://lorag-datasets/uploads/": "DATASET_NOT_FOUND",
        "s3://lorag-adapters/alice/v1/": "DATASET_BUCKET_NOT_ALLOWED",
        "s3://lorag-datasets/uploads/alice/../bob/": "DATASET_URI_INVALID",
    }
    for uri, code in cases.items():
        assert (job_refusal(job(uri)) or ("",))[0] == code, uri
    eval_elsewhere = job("s3://lorag-datasets/uploads/alice/ds-1/", eval_file="s3://other/e.jsonl")
    assert job_refusal(eval_elsewhere)[0] == "DATASET_BUCKET_NOT_ALLOWED"
    assert refusal("s3://lorag-datasets/uploads/bob/x", "bob") is None
