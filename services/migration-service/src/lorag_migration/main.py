"""Entry point of the migration-service: migrations at start, then the job tracker."""

from lorag_core.service.entry import serve
from lorag_core.service.host import ServiceHost
from lorag_core.settings import Settings
from lorag_migration.wire import register_legacy_intake

HEALTH_PORT = 8104


def register(host: ServiceHost) -> None:
    """Every host upgrades the schema at start; this one also normalises legacy requests."""
    register_legacy_intake(host)


def run() -> None:
    serve("migration-service", Settings(), register, health_port=HEALTH_PORT)
