"""The stages of a hybrid job and how their progress adds up. Pure: no Kafka, no Postgres."""

from __future__ import annotations

from dataclasses import dataclass

from lorag_core.contracts import HybridParameters, JobRequested
from lorag_core.domain.job_state import JobState
from lorag_core.domain.training_types import TrainingType

RAG, LORA, EVALUATE = "rag", "lora", "evaluate"


@dataclass(frozen=True)
class Stage:
    name: str
    training_type: TrainingType | None  # None: the orchestrator runs it itself
    depends_on: tuple[str, ...]
    weight: float  # share of the hybrid's percent

    def job_id(self, parent: str, attempt: int = 1) -> str:
        """Deterministic: a restarted orchestrator re-publishes the same sub-job, not a new one."""
        return f"{parent}.{self.name}" + (f".{attempt}" if attempt > 1 else "")


STAGES = (
    Stage(RAG, TrainingType.EXTERNAL_RAG, (), 0.35),
    Stage(LORA, TrainingType.LOCAL_LORA, (), 0.55),
    Stage(EVALUATE, None, (RAG, LORA), 0.10),
)


def parameters(request: JobRequested) -> HybridParameters:
    params = request.effective_parameters
    assert isinstance(params, HybridParameters)
    return params


def conflicts(request: JobRequested) -> list[str]:
    """Parameter combinations that cannot both hold; said before any sub-job starts."""
    params, problems = parameters(request), []
    local = request.resolved.effective is TrainingType.LOCAL_HYBRID
    if local and params.llm_model:
        problems.append("llm_model names an external LLM, but LOCAL_HYBRID keeps everything local")
    if params.rag.kb and params.minion and params.rag.kb != params.minion:
        problems.append(f"rag.kb={params.rag.kb} and minion={params.minion} disagree; give one")
    if params.lora.adapter and params.minion and params.lora.adapter != params.minion:
        problems.append(f"lora.adapter={params.lora.adapter} and minion={params.minion} disagree")
    return problems


@dataclass(frozen=True)
class StageView:
    """One stage as the jobs table shows it."""

    name: str
    state: JobState
    percent: float
    eta_seconds: float | None


def overall(views: list[StageView]) -> tuple[float, float | None]:
    """Weighted percent of all stages and the ETA of the slowest unfinished one."""
    weights = {s.name: s.weight for s in STAGES}
    percent = sum(
        weights[v.name] * (100.0 if v.state is JobState.SUCCEEDED else v.percent) for v in views
    )
    etas = [v.eta_seconds for v in views if not v.state.is_terminal and v.eta_seconds is not None]
    return min(percent, 100.0), max(etas) if etas else None
