"""Entry point of the lora-service: wire its subscribers and run until SIGTERM."""

from lorag_core.domain.training_types import TrainingType
from lorag_core.service.entry import serve
from lorag_core.service.host import ServiceHost
from lorag_core.service.intake import no_worker_yet, register_intake
from lorag_core.settings import Settings

HEALTH_PORT = 8102
OWNED = frozenset({TrainingType.LOCAL_LORA, TrainingType.LOCAL_FINE_TUNING})


def register(host: ServiceHost) -> None:
    register_intake(host, OWNED, no_worker_yet)


def run() -> None:
    serve("lora-service", Settings(), register, health_port=HEALTH_PORT)
