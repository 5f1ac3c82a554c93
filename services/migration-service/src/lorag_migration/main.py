"""Entry point of the migration-service: migrations at start, the job tracker, legacy intake,
and the conversion API."""

from lorag_core.service.entry import serve
from lorag_core.service.host import Runtime, ServiceHost
from lorag_core.settings import Settings
from lorag_migration.api import router
from lorag_migration.runs import ConversionRuns
from lorag_migration.wire import register_legacy_intake

HEALTH_PORT = 8104


def register(host: ServiceHost) -> None:
    """Every host upgrades the schema at start; this one also normalises legacy requests and
    converts the legacy table on request."""
    register_legacy_intake(host)
    runs = ConversionRuns(host.settings.postgres_dsn, host.broker)
    host.api.state.conversions = runs
    host.add_routes(router)

    async def stop(_: Runtime) -> None:
        await runs.stop()

    host.on_stop(stop)


def run() -> None:
    serve("migration-service", Settings(), register, health_port=HEALTH_PORT)
