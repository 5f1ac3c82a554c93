"""Entry point of the gateway: for now it hosts the job tracker and answers health checks."""

from lorag_core.service.entry import serve
from lorag_core.service.host import ServiceHost
from lorag_core.settings import Settings

HEALTH_PORT = 8105


def register(host: ServiceHost) -> None:
    """The HTTP API and web console arrive with their issue."""


def run() -> None:
    serve("gateway", Settings(), register, health_port=HEALTH_PORT)
