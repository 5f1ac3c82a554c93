"""Settings of the hybrid-orchestrator (LORAG_HYBRID_*)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class HybridSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LORAG_HYBRID_", extra="ignore")

    max_profile_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Most bytes of a dataset read to profile it."
    )
    resources_timeout_s: float = Field(
        default=5.0,
        gt=0,
        description="How long a recommendation waits for the lora-service's "
        "machine resources before it estimates on this machine instead.",
    )
    ask_timeout_s: float = Field(
        default=180.0, gt=0,
        description="How long a question to the rag-service or the lora-service may take: an "
        "answer waits on a chat model, which may itself retry.",
    )  # fmt: skip
    poll_s: float = Field(
        default=0.5, gt=0, description="How often stage progress is read; an ending wakes at once."
    )
    stall_s: float = Field(default=900.0, gt=0, description="A stage silent this long has failed.")
    cancel_wait_s: float = Field(
        default=30.0,
        ge=0,
        description="How long compensation waits for a cancelled stage to end, so that one "
        "which finished anyway is undone too.",
    )
    max_retries: int = Field(default=2, ge=0, description="Retries of a retryable stage failure.")
    retry_backoff_s: float = Field(default=2.0, ge=0, description="First retry delay; doubles.")
    eval_pairs: int = Field(
        default=12, ge=0, description="Question/answer pairs that score variants."
    )
    warm_up: bool = Field(
        default=True,
        description="Probe the GPU at start, in the background, so the first saga does not wait "
        "for torch to load; off saves its memory.",
    )


class FinetuneSettings(BaseSettings):
    """Where EXTERNAL_HYBRID trains (LORAG_FINETUNE_*): an OpenAI-compatible fine-tuning API."""

    model_config = SettingsConfigDict(env_prefix="LORAG_FINETUNE_", extra="ignore")

    base_url: str | None = Field(
        default=None,
        description="The provider's API (…/v1); default: the local lora-service's own "
        "(LORAG_LORA_OPENAI_URL), so it works offline.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="The provider's key; default: the service token (local)."
    )
    model: str = Field(default="base", description="The provider's model to fine-tune.")
    poll_s: float = Field(default=2.0, gt=0, description="How often the provider's job is read.")
    timeout_s: float = Field(default=60.0, gt=0, description="One call to the provider.")
