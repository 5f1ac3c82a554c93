"""Settings of the lora-service, read from LORAG_LORA_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_models_dir() -> Path:
    return Path.home() / ".cache" / "lorag" / "models"


class LoraSettings(BaseSettings):
    """How the lora-service trains, stores and serves models and adapters."""

    model_config = SettingsConfigDict(env_prefix="LORAG_LORA_", extra="ignore")

    models_dir: Path = Field(
        default_factory=_default_models_dir,
        description="Where the locally built base model lives (built on first use).",
    )
    default_base_model: str | None = Field(
        default=None, description="Hub id or folder of the default base model; default: tiny-llama."
    )
    work_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "lorag" / "lora-work",
        description="Scratch space: downloaded adapters, files being uploaded.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="Where models run; auto picks CUDA, then MPS, then CPU."
    )
    torch_threads: int = Field(default=2, ge=1, description="torch intra-op threads on CPU.")
    decode_threads: int = Field(
        default=1, ge=1,
        description="torch intra-op threads of the serving decode thread on CPU. A small model's "
        "decode step is too short to split: with 2 the team waits for any core another thread "
        "holds (`bench serving`, tiny base, 8 clients: 533-728 tokens/s with 2, 854-1,221 with 1). "
        "Raise it for a base model whose step takes tens of milliseconds.",
    )  # fmt: skip
    memory_headroom: float = Field(
        default=0.9, gt=0, le=1, description="Share of free memory a model may plan to use."
    )
    max_fine_tuning_params: int = Field(
        default=50_000_000,
        ge=1,
        description="LOCAL_FINE_TUNING is refused for models with more parameters than this.",
    )
    long_sequences: Literal["truncate", "fail"] = Field(
        default="truncate",
        description="Examples longer than max_seq_len: cut them (and report it) or fail the job.",
    )
    batching: Literal["pack", "group"] = Field(
        default="pack",
        description="pack: concatenate examples into full blocks; group: length-grouped batches.",
    )
    checkpoint_every: int = Field(default=25, ge=1, description="Steps between checkpoints.")
    eval_every: int = Field(default=50, ge=1, description="Steps between evaluations.")
    api_host: str = Field(default="127.0.0.1", description="Address of the inference API.")
    api_port: int = Field(default=8102, ge=0, le=65535, description="Port of the inference API.")
    serve: bool = Field(default=True, description="Run the OpenAI-compatible inference API.")
    train: bool = Field(
        default=True,
        description="Run training jobs here. False (a serving replica): jobs are still accepted "
        "into the work queue, and a replica with train=true runs them.",
    )
    serve_base_model: str | None = Field(
        default=None, description="Base model the API serves; default: the default base model."
    )
    adapter_cache_size: int = Field(default=8, ge=1, description="Adapters kept loaded (LRU).")
    max_new_tokens: int = Field(default=128, ge=1, description="Default completion length.")
    max_batch: int = Field(
        default=16, ge=1, description="Requests decoded together (continuous batching)."
    )
    max_queue: int = Field(
        default=64, ge=0, description="Requests waiting for a batch slot; beyond: 429."
    )
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After of a 429 (seconds).")
    stream_interval_ms: int = Field(
        default=20, ge=0,
        description="A stream's text is sent at most this often (its first text and its end at "
        "once); the tokens decoded in between go out together. 0: every token on its own.",
    )  # fmt: skip
    model_cache_bytes: int = Field(
        default=2 * 2**30, ge=0,
        description="Memory the fine-tuned models kept loaded may use (LRU; one is always kept).",
    )  # fmt: skip
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="API keys of the OpenAI API besides the gateway's tokens: {key: owner}.",
    )
    require_api_key: bool | None = Field(
        default=None,
        description="Refuse calls without a key (401); default: required unless profile local.",
    )
