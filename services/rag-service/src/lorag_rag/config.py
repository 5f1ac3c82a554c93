"""Settings of the rag-service: ingestion limits, ChromaDB and the LLM used for answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lorag_api.base import ServiceUrls


def default_state_dir() -> Path:
    return Path(os.environ.get("LORAG_STATE_DIR") or Path.cwd() / ".lorag")


class RagSettings(BaseSettings):
    """How datasets are read, checked and embedded."""

    model_config = SettingsConfigDict(env_prefix="LORAG_RAG_", extra="ignore")

    allowed_roots: tuple[Path, ...] = Field(
        default=(), description="Local folders datasets may be read from; none: paths refused."
    )
    max_file_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1, description="Larger files are refused unread."
    )
    max_line_bytes: int = Field(
        default=1024 * 1024, ge=1, description="A text line longer than this fails the file."
    )
    embed_batch_size: int = Field(default=64, ge=1, le=4096, description="Chunks per encode call.")
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch intra-op threads; default: torch's own choice."
    )
    encode_lanes: int | None = Field(
        default=None,
        ge=1,
        description="Encoder threads of an ingest, each running torch on one core; default: as"
        " many as torch's intra-op threads (torch_threads). 1: one encoder on all of them.",
    )
    embed_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description=(
            "Weights the embedding model computes in. auto: bfloat16 on a CPU with bfloat16"
            " instructions (AMX or AVX512-BF16), about 1.5-2x faster and within 1e-4 cosine of"
            " float32; float32 elsewhere. Vectors are stored as float32 either way."
        ),
    )
    query_runtime: Literal["auto", "onnx", "torch"] = Field(
        default="auto",
        description=(
            "What encodes one question for a query. auto: ONNX Runtime when the model is a"
            " transformer with mean pooling (exported from its float32 weights at load; 4.3 ms"
            " a question against 12.8 ms in torch, bench.profile_rag_query), torch otherwise;"
            " onnx: refuse a model"
            " that cannot be exported; torch: never export."
        ),
    )
    eval_k: int = Field(default=5, ge=1, le=100, description="k of hit rate@k and MRR@k.")


class ChromaSettings(BaseSettings):
    """Where knowledge bases live: embedded on disk, or a Chroma server when a URL is set."""

    model_config = SettingsConfigDict(env_prefix="LORAG_CHROMA_", extra="ignore")

    url: str | None = Field(default=None, description="http(s)://host:port of a Chroma server.")
    path: Path = Field(
        default_factory=lambda: default_state_dir() / "chroma",
        description="Folder of the embedded Chroma (PersistentClient).",
    )


class LlmSettings(BaseSettings):
    """The OpenAI-compatible chat endpoint that answers with retrieved context."""

    model_config = SettingsConfigDict(env_prefix="LORAG_LLM_", extra="ignore")

    base_url: str | None = Field(
        default=None,
        description="Chat endpoint; default: the lora-service's /v1 (LORAG_LORA_OPENAI_URL).",
    )
    api_key: SecretStr | None = Field(default=None, description="API key; none for local.")
    model: str = Field(
        default="base", description="Model name sent; `base` is the local base model."
    )
    timeout_s: float = Field(default=60.0, gt=0, description="Seconds before a request gives up.")

    @property
    def effective_base_url(self) -> str | None:
        """The given URL; without one, the local endpoint unless a key says a hosted API."""
        if self.base_url:
            return self.base_url
        return None if self.api_key else ServiceUrls().lora_openai_url
