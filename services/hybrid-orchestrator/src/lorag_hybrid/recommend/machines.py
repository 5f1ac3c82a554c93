"""The machine a training job would run on: the lora-service's, asked over its API.

Training runs in the lora-service, so its cores, memory and GPU size the estimates, not the
orchestrator's. When it cannot be asked, this machine stands in and the answer says so.
"""

from __future__ import annotations

import asyncio
import logging

from lorag_api import ServiceError
from lorag_api.base import ServiceUrls
from lorag_api.lora import LoraClient
from lorag_hybrid.recommend.resources import Resources, detect

log = logging.getLogger(__name__)


async def training_machine(
    token: str, *, url: str | None = None, timeout: float = 5.0
) -> tuple[Resources, str, str | None]:
    """The resources, where they came from, and a note when that is not the lora-service."""
    url = url or ServiceUrls().lora_service_url
    try:
        async with LoraClient(url, token, timeout=timeout) as lora:
            found = await lora.resources()
        return Resources(**found.model_dump()), "lora-service", None
    except ServiceError as exc:
        log.warning("lora-service resources unavailable (%s); using this machine's", exc)
        note = (
            f"the lora-service could not be asked for its machine ({exc}); the estimates use "
            "the hybrid-orchestrator's machine instead, which may differ from where training runs"
        )
        return await asyncio.to_thread(detect), "hybrid-orchestrator", note
