"""Contracts of the job lifecycle: `job.requested`, `job.progress` and `job.cancel`."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from lorag_core.contracts.base import Contract, Event, JobId
from lorag_core.contracts.parameters import (
    FineTuningParameters,
    HybridParameters,
    JobParameters,
    Location,
    LoraParameters,
    RagParameters,
)
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import (
    AnyTrainingType,
    LegacyTrainingType,
    ResolvedType,
    TrainingType,
    resolve,
)

PARAMETERS_BY_TYPE: dict[TrainingType, type[Contract]] = {
    TrainingType.EXTERNAL_RAG: RagParameters,
    TrainingType.LOCAL_LORA: LoraParameters,
    TrainingType.LOCAL_FINE_TUNING: FineTuningParameters,
    TrainingType.EXTERNAL_HYBRID: HybridParameters,
    TrainingType.LOCAL_HYBRID: HybridParameters,
}

Owner = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Tenant that owns the job."),
]


class DatasetRef(Contract):
    """Where a dataset lives."""

    uri: Location = Field(
        min_length=1,
        max_length=2048,
        description="s3://bucket/key (a prefix for many files) or a path under an allowed root.",
        examples=["s3://lorag-datasets/job-3f2a9c1e7b4d/corpus/"],
    )
    format: str | None = Field(
        default=None,
        description="Format hint (jsonl, csv, md, txt, html, pdf); default: by suffix.",
    )
    sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Digest of a single-file dataset."
    )


class JobRequested(Event):
    """A client asked for a training job."""

    topic: ClassVar[str] = "job.requested"

    job_id: JobId
    training_type: AnyTrainingType = Field(
        description="Requested type; legacy names (RAG, LORA, HYBRID, FINE_TUNING) are mapped.",
        examples=["EXTERNAL_RAG"],
    )
    owner: Owner = "default"
    minion_id: str | None = Field(
        default=None, max_length=128, description="Minion this job trains, if any."
    )
    datasets: tuple[DatasetRef, ...] = Field(
        min_length=1, max_length=256, description="The datasets the job reads."
    )
    parameters: JobParameters | None = Field(
        default=None, description="Typed parameters of the effective type; default: its defaults."
    )
    parent_job_id: JobId | None = Field(
        default=None, description="The hybrid job this job is a stage of."
    )
    stage: str | None = Field(
        default=None, max_length=64, description="Name of the saga stage this job runs."
    )

    @model_validator(mode="after")
    def _parameters_fit_type(self) -> JobRequested:
        expected = PARAMETERS_BY_TYPE[self.resolved.effective]
        if self.parameters is not None and not isinstance(self.parameters, expected):
            raise ValueError(
                f"parameters of kind {self.parameters.kind!r} do not fit "
                f"{self.resolved.effective.value}; expected {expected.__name__}"
            )
        if (self.parent_job_id is None) != (self.stage is None):
            raise ValueError("parent_job_id and stage come together or not at all")
        return self

    @property
    def resolved(self) -> ResolvedType:
        return resolve(self.training_type)

    @property
    def is_legacy(self) -> bool:
        return isinstance(self.training_type, LegacyTrainingType)

    @property
    def effective_parameters(self) -> Contract:
        """The parameters given, or the defaults of the effective type."""
        return self.parameters or PARAMETERS_BY_TYPE[self.resolved.effective]()


class ArtifactRef(Contract):
    """Something a job produced."""

    kind: str = Field(description="What it is: adapter, knowledge_base, checkpoint, report…")
    uri: str = Field(description="Where it is: s3://…, chroma://collection, …")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$", description="Digest.")
    size_bytes: int | None = Field(default=None, ge=0, description="Size in bytes.")


class JobResult(Contract):
    """What a succeeded job produced."""

    artifacts: tuple[ArtifactRef, ...] = Field(default=(), description="Artifacts produced.")
    summary: dict[str, float | int | str | bool | None] = Field(
        default_factory=dict, description="Headline figures (hit rate, eval loss, counts…)."
    )


class JobError(Contract):
    """Why a job failed."""

    code: str = Field(
        pattern=r"^[A-Z][A-Z0-9_]{1,63}$",
        description="Stable machine-readable code.",
        examples=["DATASET_NOT_FOUND"],
    )
    message: str = Field(max_length=4000, description="What went wrong and what to do about it.")
    retryable: bool = Field(default=False, description="Whether retrying the same job can help.")


class JobProgress(Event):
    """A job moved: its state, stage, figures, and at the end its result or error."""

    topic: ClassVar[str] = "job.progress"

    job_id: JobId
    seq: int = Field(
        ge=1, description="Per-job monotonic sequence; duplicates and late events are ignored."
    )
    state: JobState = Field(description="State of the job as of this event.")
    producer: str = Field(max_length=64, description="Service that published the event.")
    stage: str | None = Field(default=None, max_length=64, description="Current stage name.")
    percent: float | None = Field(default=None, ge=0, le=100, description="Overall percent done.")
    eta_seconds: float | None = Field(default=None, ge=0, description="Estimated seconds left.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Figures such as loss, tokens_per_s, chunks_per_s."
    )
    message: str | None = Field(default=None, max_length=2000, description="A line for people.")
    result: JobResult | None = Field(default=None, description="Set when state is SUCCEEDED.")
    error: JobError | None = Field(default=None, description="Set when state is FAILED.")

    @model_validator(mode="after")
    def _outcome_matches_state(self) -> JobProgress:
        if self.result is not None and self.state is not JobState.SUCCEEDED:
            raise ValueError("result is only allowed with state SUCCEEDED")
        if self.state is JobState.FAILED and self.error is None:
            raise ValueError("state FAILED needs an error")
        if self.error is not None and self.state not in (JobState.FAILED, JobState.CANCELLED):
            raise ValueError("error is only allowed with state FAILED or CANCELLED")
        return self


class JobCancelRequested(Event):
    """Someone asked to cancel a job; the service running it stops and reports CANCELLED."""

    topic: ClassVar[str] = "job.cancel"

    job_id: JobId
    reason: str = Field(default="cancelled by user", max_length=500, description="Why.")
    requested_by: str = Field(default="cli", max_length=64, description="Who asked.")


class CompensationRequested(Event):
    """A saga undoes a finished stage: the service that ran the job removes what it produced."""

    topic: ClassVar[str] = "job.compensate"

    job_id: JobId
    parent_job_id: JobId
    reason: str = Field(max_length=2000, description="Why the saga compensates.")
