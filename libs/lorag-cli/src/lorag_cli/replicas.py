"""Local replicas for `lorag serve`: how many instances of each service, their names and ports."""

from __future__ import annotations

from dataclasses import dataclass

# Each service's own port (its API, /health and /ready), as its entry point sets it: the CLI
# imports no service, so the defaults are restated here.
DEFAULT_PORTS = {
    "rag-service": 8101,
    "lora-service": 8112,
    "hybrid-orchestrator": 8103,
    "migration-service": 8104,
    "gateway": 8105,
}
# Further ports a service listens on, which a second instance must move as well.
EXTRA_PORTS = {
    "lora-service": {"LORAG_LORA_API_PORT": 8102},  # the OpenAI-compatible API
    "gateway": {"LORAG_GATEWAY_PORT": 8000},  # the API and console
}
# Every port lorag uses by default lies in 8000-8112, so steps of 100 never land one replica on
# another service's port, nor (up to ten replicas) on the local servers' (S3 9000, Kafka 9092).
REPLICA_PORT_STEP = 100
MAX_REPLICAS = 10
PORTS_HELP = (
    f"Replica k (1..N) of a service listens on the service's port + {REPLICA_PORT_STEP} x (k-1):"
    " rag-service on 8101, 8201, 8301...; the lora-service's OpenAI API and the gateway's API"
    " move the same way. Replica 1 keeps the usual ports, and the service addresses"
    " (LORAG_*_SERVICE_URL) name it."
)


class ReplicaError(ValueError):
    """A --replicas value that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Instance:
    """One process of a service: replica `index` of `service`."""

    service: str
    index: int

    @property
    def instance_id(self) -> str:
        """Its LORAG_INSTANCE_ID: the `worker` named on the jobs it runs."""
        return f"{self.service}-{self.index}"

    def env(self, current: dict[str, str]) -> dict[str, str]:
        """The settings that make this replica distinct from its siblings."""
        own = {"LORAG_INSTANCE_ID": self.instance_id}
        if self.index == 1:
            return own
        offset = REPLICA_PORT_STEP * (self.index - 1)
        ports = {"LORAG_HEALTH_PORT": DEFAULT_PORTS[self.service]}
        ports |= EXTRA_PORTS.get(self.service, {})
        for var, default in ports.items():
            own[var] = str(int(current.get(var, default)) + offset)
        return own


def replica_counts(service: str, specs: list[str], services: list[str]) -> dict[str, int]:
    """How many instances of each service to start, from the --replicas values.

    For `all` each value is SERVICE=N; for one service, N (or that SERVICE=N).
    """
    counts = dict.fromkeys(services if service == "all" else [service], 1)
    for spec in specs:
        name, sep, number = spec.rpartition("=")
        if not sep:
            if service == "all":
                raise ReplicaError(f"--replicas {spec!r}: with `all`, say which service: SERVICE=N")
            name = service
        if name not in counts:
            known = ", ".join(counts)
            raise ReplicaError(f"--replicas {spec!r}: {name!r} is not started here ({known})")
        if not number.isdigit() or not 1 <= int(number) <= MAX_REPLICAS:
            raise ReplicaError(
                f"--replicas {spec!r}: the count must be a whole number from 1 to {MAX_REPLICAS}"
            )
        counts[name] = int(number)
    return counts


def instances(counts: dict[str, int]) -> list[Instance]:
    """Every process to start, service by service."""
    return [Instance(name, k) for name, n in counts.items() for k in range(1, n + 1)]
