"""Entry point of the migration-service: migrations at start, then the job tracker."""

from lorag_core.service.entry import serve
from lorag_core.service.host import ServiceHost
from lorag_core.settings import Settings

HEALTH_PORT = 8104


def register(host: ServiceHost) -> None:
    """The schema is upgraded by every host at start; legacy conversion arrives with its issue."""


def run() -> None:
    serve("migration-service", Settings(), register, health_port=HEALTH_PORT)
