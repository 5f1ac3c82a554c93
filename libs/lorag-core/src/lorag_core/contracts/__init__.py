"""Event contracts: one module per event family; all frozen, strict and versioned."""

from lorag_core.contracts.adapters import AdapterCreated
from lorag_core.contracts.base import SCHEMA_VERSION, Contract, Event
from lorag_core.contracts.dead_letters import DeadLettered, dead_letter_topic
from lorag_core.contracts.jobs import (
    ArtifactRef,
    CompensationRequested,
    DatasetRef,
    JobCancelRequested,
    JobError,
    JobProgress,
    JobRequested,
    JobResult,
)
from lorag_core.contracts.minions import MinionXpEarned
from lorag_core.contracts.parameters import (
    FineTuningParameters,
    HybridParameters,
    LoraParameters,
    RagParameters,
)

EVENTS: tuple[type[Event], ...] = (
    JobRequested,
    JobProgress,
    JobCancelRequested,
    AdapterCreated,
    CompensationRequested,
    MinionXpEarned,
    DeadLettered,
)

__all__ = [
    "EVENTS",
    "SCHEMA_VERSION",
    "AdapterCreated",
    "ArtifactRef",
    "CompensationRequested",
    "Contract",
    "DatasetRef",
    "DeadLettered",
    "Event",
    "FineTuningParameters",
    "HybridParameters",
    "JobCancelRequested",
    "JobError",
    "JobProgress",
    "JobRequested",
    "JobResult",
    "LoraParameters",
    "MinionXpEarned",
    "RagParameters",
    "dead_letter_topic",
]
