"""A minimal HTTP health endpoint (GET /health, /ready), so orchestrators can probe a service.

Kept dependency-free on purpose: it answers two paths and nothing else.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
Check = Callable[[], Awaitable[dict[str, object]]]


class HealthServer:
    """Serves `/health` (the process is alive) and `/ready` (its dependencies answer)."""

    def __init__(self, host: str, port: int, service: str, readiness: Check) -> None:
        self.host, self.port, self.service, self.readiness = host, port, service, readiness
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        log.info("health endpoint on http://%s:%d/health", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            path = request_line.split(" ")[1] if request_line.count(" ") >= 2 else ""
            status, body = await self._route(path)
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _route(self, path: str) -> tuple[str, dict[str, object]]:
        if path.startswith("/health"):
            return "200 OK", {"status": "ok", "service": self.service}
        if path.startswith("/ready"):
            checks = await self.readiness()
            ok = all(v is True for v in checks.values())
            return ("200 OK" if ok else "503 Service Unavailable"), {
                "status": "ready" if ok else "not ready",
                "service": self.service,
                "checks": checks,
            }
        return "404 Not Found", {"error": f"unknown path {path!r}; try /health or /ready"}
