"""The three lines every service's entry point needs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from lorag_core.service.host import ServiceHost
from lorag_core.settings import Settings
from lorag_core.tracker import register_job_tracker


def serve(
    service: str, settings: Settings, register: Callable[[ServiceHost], None], *, health_port: int
) -> None:
    """Build the host, wire the job tracker and the service's own subscribers, run until SIGTERM."""
    port = int(os.environ.get("LORAG_HEALTH_PORT", health_port))
    host = ServiceHost(
        service,
        settings,
        health_host=os.environ.get("LORAG_HEALTH_HOST", "127.0.0.1"),
        health_port=port,
    )
    register_job_tracker(host)
    register(host)
    asyncio.run(host.run())
