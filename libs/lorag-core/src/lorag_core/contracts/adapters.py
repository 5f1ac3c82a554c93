"""Contract of `adapter.created`: an adapter version is durably stored and can be served."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from lorag_core.contracts.base import Event, JobId


class AdapterCreated(Event):
    """A LoRA adapter version was written to object storage and registered."""

    topic: ClassVar[str] = "adapter.created"

    adapter_name: str = Field(max_length=64, description="Adapter name.", examples=["support-tone"])
    version: int = Field(ge=1, description="Version within the name; never written twice.")
    job_id: JobId
    base_model: str = Field(description="Hub id or folder name of the base model.")
    base_model_revision: str = Field(description="Revision or content digest of the base model.")
    uri: str = Field(description="s3:// URI of the adapter folder.")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Digest of the adapter weights.")
    size_bytes: int = Field(ge=0, description="Size of the adapter weights in bytes.")
    lora_config: dict[str, object] = Field(
        description="The LoRA configuration it was trained with."
    )
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Evaluation figures (eval_loss, perplexity…)."
    )
