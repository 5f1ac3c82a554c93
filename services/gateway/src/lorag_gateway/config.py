"""Settings of the gateway (LORAG_GATEWAY_*): where the API listens and what uploads may be."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DATASET_SUFFIXES = (".jsonl", ".json", ".csv", ".md", ".markdown", ".txt", ".html", ".htm", ".pdf")


class GatewaySettings(BaseSettings):
    """How the HTTP API and the console are served."""

    model_config = SettingsConfigDict(env_prefix="LORAG_GATEWAY_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface the API listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port of the API and console.")
    max_upload_bytes: int = Field(
        default=100 * 1024 * 1024, ge=1, description="Larger dataset uploads are refused (413)."
    )
    max_upload_files: int = Field(
        default=1000, ge=1, description="Most files one dataset upload may have (else 422)."
    )
    upload_suffixes: tuple[str, ...] = Field(
        default=DATASET_SUFFIXES, description="File types a dataset upload may have (else 415)."
    )
    max_profile_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1, description="Most bytes read to profile a dataset."
    )
    poll_s: float = Field(
        default=1.0, gt=0, description="A watched job is re-read on each change, and this often."
    )
    rate_limit_per_s: float = Field(
        default=50.0, gt=0, description="Requests a second each owner may make (429 past it)."
    )
    token_cache_s: float = Field(
        default=2.0,
        ge=0,
        description="A live token's owner is remembered this long (no "
        "database read per request); a revoked token stops working within it. 0: off.",
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, description="Requests an owner may make at once before the rate holds."
    )
