"""Adapters registered and stored as a finished LoRA job leaves them, for the serving benches."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from lorag_core.storage import ObjectStore
from lorag_lora.adapters import artifacts, registry


async def register(pool: Any, objects: ObjectStore, base: Any, model: Any, name: str) -> None:
    """Save `model`'s adapter as version 1.. of `name`, in S3 and the registry, marked ready."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        async with pool.connection() as conn:
            version = await registry.reserve_version(conn, name, f"bench-job-{name}", "bench")
        ref = artifacts.store_adapter(objects, Path(tmp), name, version, {})
    async with pool.connection() as conn:
        await registry.mark_ready(conn, name, version, base_model=base.name,
                                  base_model_revision=base.revision,
                                  uri=artifacts.adapter_uri(name, version),
                                  sha256=ref.sha256, size_bytes=ref.size)  # fmt: skip
