"""Typed parameters per training type, carried by `job.requested`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from lorag_core.contracts.base import Contract

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]


def _not_a_url(value: str) -> str:
    """Models are named, never fetched from a caller's URL: endpoints are the operator's
    settings, so a job cannot make a service call out to an address of its choosing."""
    if "://" in value:
        raise ValueError(
            f"{value!r} is a URL; name a model (hub id or folder): endpoints are settings"
        )
    return value


def _s3_or_path(value: str) -> str:
    """Data is read from object storage or an allowed local folder, never from a caller's URL."""
    if "://" in value and not value.startswith("s3://"):
        raise ValueError(
            f"{value!r}: only s3:// URIs or paths are read; upload the file (POST /api/datasets)"
        )
    return value


Location = Annotated[str, AfterValidator(_s3_or_path)]
ModelName = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_not_a_url)]


class RagParameters(Contract):
    """How to build an EXTERNAL_RAG knowledge base."""

    kind: Literal["rag"] = Field(default="rag", description="Discriminator: RAG parameters.")
    kb: Name | None = Field(
        default=None, description="Knowledge base name; default: the minion id or the job id."
    )
    chunk_tokens: int = Field(default=256, ge=16, le=4096, description="Tokens per chunk.")
    chunk_overlap: int = Field(
        default=32, ge=0, le=1024, description="Tokens shared by neighbours."
    )
    embedding_model: ModelName = Field(
        default="all-MiniLM-L6-v2",
        description="sentence-transformers model (name, hub id or folder); locked per KB.",
    )
    text_field: str | None = Field(default=None, description="JSONL field or CSV column with text.")
    question_field: str = Field(default="question", description="JSONL/CSV question field.")
    answer_field: str = Field(default="answer", description="JSONL/CSV answer field.")
    eval_file: Location | None = Field(
        max_length=2048,
        default=None,
        description="URI of a JSONL of {question, answer} pairs for hit rate and MRR.",
        json_schema_extra={"x-lorag-file": True},  # the CLI uploads a local file named here
    )
    on_bad_file: Literal["fail", "skip"] = Field(
        default="fail",
        description="What one unreadable file in a multi-file dataset does to the job.",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> RagParameters:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self


class LoraParameters(Contract):
    """How to train a LOCAL_LORA adapter."""

    kind: Literal["lora"] = Field(default="lora", description="Discriminator: LoRA parameters.")
    base_model: ModelName | None = Field(
        default=None, description="Hub id or folder of the base model; default: the local model."
    )
    adapter: Name | None = Field(default=None, description="Adapter name; default: the job id.")
    r: int = Field(default=8, ge=1, le=256, description="LoRA rank.")
    alpha: float = Field(default=16.0, gt=0, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(default=0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: tuple[str, ...] | None = Field(
        default=None, description="Module names to adapt; default: per architecture."
    )
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps.")
    epochs: float = Field(default=1.0, gt=0, le=100, description="Passes over the training split.")
    lr: float = Field(default=2e-4, gt=0, lt=1, description="Peak learning rate.")
    batch_size: int = Field(default=8, ge=1, le=1024, description="Sequences per step.")
    max_seq_len: int = Field(default=256, ge=8, le=32768, description="Tokens per sequence.")
    seed: int = Field(default=0, ge=0, description="Seed for data order and initialisation.")
    eval_ratio: float = Field(default=0.1, ge=0, lt=1, description="Share held out for evaluation.")


class FineTuningParameters(Contract):
    """How to fine-tune all weights of a small LOCAL_FINE_TUNING model."""

    kind: Literal["fine_tuning"] = Field(
        default="fine_tuning", description="Discriminator: full fine-tuning parameters."
    )
    base_model: ModelName | None = Field(default=None, description="Hub id or folder of the model.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps.")
    epochs: float = Field(default=1.0, gt=0, le=100, description="Passes over the training split.")
    lr: float = Field(default=5e-5, gt=0, lt=1, description="Peak learning rate.")
    batch_size: int = Field(default=8, ge=1, le=1024, description="Sequences per step.")
    max_seq_len: int = Field(default=256, ge=8, le=32768, description="Tokens per sequence.")
    seed: int = Field(default=0, ge=0, description="Seed for data order and initialisation.")
    eval_ratio: float = Field(default=0.1, ge=0, lt=1, description="Share held out for evaluation.")


class HybridParameters(Contract):
    """How to run a hybrid saga: its RAG and LoRA stages and the minion it produces."""

    kind: Literal["hybrid"] = Field(
        default="hybrid", description="Discriminator: hybrid parameters."
    )
    minion: Name | None = Field(default=None, description="Name of the minion the hybrid produces.")
    rag: RagParameters = Field(default_factory=RagParameters, description="RAG stage parameters.")
    lora: LoraParameters = Field(
        default_factory=LoraParameters, description="LoRA stage parameters."
    )
    llm_model: ModelName | None = Field(
        default=None,
        title="LLM model",
        description="External LLM model name (EXTERNAL_HYBRID); default from settings.",
        json_schema_extra={"x-lorag-types": ["EXTERNAL_HYBRID"]},  # forms show it for these
    )


JobParameters = Annotated[
    RagParameters | LoraParameters | FineTuningParameters | HybridParameters,
    Field(discriminator="kind"),
]
