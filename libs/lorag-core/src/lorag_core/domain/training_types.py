"""Training types, the legacy names the old system used, and how one maps to the other."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TrainingType(StrEnum):
    """The five ways lorag turns a dataset into a better minion."""

    EXTERNAL_RAG = "EXTERNAL_RAG"
    LOCAL_LORA = "LOCAL_LORA"
    LOCAL_FINE_TUNING = "LOCAL_FINE_TUNING"
    EXTERNAL_HYBRID = "EXTERNAL_HYBRID"
    LOCAL_HYBRID = "LOCAL_HYBRID"

    @property
    def is_hybrid(self) -> bool:
        return self in (TrainingType.EXTERNAL_HYBRID, TrainingType.LOCAL_HYBRID)

    @property
    def runs_locally(self) -> bool:
        """True when the model that answers runs on our own hardware."""
        return self.name.startswith("LOCAL_")


class LegacyTrainingType(StrEnum):
    """Deprecated names from the original system; still accepted everywhere."""

    RAG = "RAG"
    LORA = "LORA"
    HYBRID = "HYBRID"
    FINE_TUNING = "FINE_TUNING"

    @property
    def successor(self) -> TrainingType:
        return LEGACY_SUCCESSORS[self]


LEGACY_SUCCESSORS: dict[LegacyTrainingType, TrainingType] = {
    LegacyTrainingType.RAG: TrainingType.EXTERNAL_RAG,
    LegacyTrainingType.LORA: TrainingType.LOCAL_LORA,
    LegacyTrainingType.HYBRID: TrainingType.EXTERNAL_HYBRID,
    LegacyTrainingType.FINE_TUNING: TrainingType.LOCAL_FINE_TUNING,
}

AnyTrainingType = TrainingType | LegacyTrainingType


@dataclass(frozen=True)
class ResolvedType:
    """The type a client asked for and the type lorag runs; both are kept on the job."""

    requested: AnyTrainingType
    effective: TrainingType

    @property
    def is_legacy(self) -> bool:
        return isinstance(self.requested, LegacyTrainingType)

    @property
    def deprecation_notice(self) -> str | None:
        if not self.is_legacy:
            return None
        return (
            f"training type {self.requested.value} is deprecated; "
            f"it runs as {self.effective.value}. Submit {self.effective.value} instead."
        )


def parse_training_type(value: str) -> AnyTrainingType:
    """Parse a type name, new or legacy, any case; ValueError lists the valid names."""
    name = value.strip().upper()
    for enum in (TrainingType, LegacyTrainingType):
        if name in enum.__members__:
            return enum[name]
    valid = ", ".join([*TrainingType.__members__, *LegacyTrainingType.__members__])
    raise ValueError(f"unknown training type {value!r}; valid types: {valid}")


def resolve(requested: AnyTrainingType) -> ResolvedType:
    """Map a requested type to the one that runs."""
    if isinstance(requested, LegacyTrainingType):
        return ResolvedType(requested, requested.successor)
    return ResolvedType(requested, requested)
