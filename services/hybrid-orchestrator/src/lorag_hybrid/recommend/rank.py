"""Rank every training type for a dataset, a target and a machine: score, reasons, estimates,
or a refusal with its reason. Rules, not a model: every point of a score has a reason."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lorag_core.domain.training_types import TrainingType
from lorag_hybrid.recommend import estimate
from lorag_hybrid.recommend.models import ModelSpec
from lorag_hybrid.recommend.profile import DatasetProfile, Shape
from lorag_hybrid.recommend.resources import Resources

Target = Literal["external", "local"]
MIN_TRAINING_TOKENS = 2_000
FINE_TUNING_MAX_PARAMS = 1_500_000_000


@dataclass(frozen=True)
class Goal:
    target: Target = "external"
    private: bool = False  # the data must not leave this machine
    budget_usd: float | None = None
    epochs: float = 1.0
    r: int = 8
    batch: int = 8
    seq: int = 256


@dataclass
class Recommendation:
    training_type: TrainingType
    score: float
    estimate: estimate.Estimate
    reasons: list[str] = field(default_factory=list)
    refused: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "training_type": self.training_type.value,
            "score": round(self.score, 1),
            "refused": self.refused,
            "reasons": self.reasons,
            **self.estimate.as_dict(),
        }


def rank(
    profile: DatasetProfile,
    goal: Goal,
    model: ModelSpec,
    machine: Resources,
    prices: estimate.Prices | None = None,
    history: dict[TrainingType, str] | None = None,
) -> list[Recommendation]:
    """Every type, best first; refused types last."""
    prices = prices or estimate.Prices()
    facts = profile.share(Shape.QA_PAIRS) + profile.share(Shape.PROSE)
    behaviour = profile.share(Shape.INSTRUCTIONS) + profile.share(Shape.CHAT)
    tokens = max(profile.tokens, 1)
    train_tokens = int(tokens * goal.epochs)
    rag_cost = estimate.ingestion(tokens, machine, prices)
    lora_cost = estimate.training(
        model,
        train_tokens,
        r=goal.r,
        batch=goal.batch,
        seq=goal.seq,
        full=False,
        resources=machine,
        prices=prices,
    )
    ft_cost = estimate.training(
        model,
        train_tokens,
        r=goal.r,
        batch=goal.batch,
        seq=goal.seq,
        full=True,
        resources=machine,
        prices=prices,
    )
    rag = Recommendation(TrainingType.EXTERNAL_RAG, 40 + 45 * facts, rag_cost)
    rag.reasons.append(f"{facts:.0%} of records are facts to look up (Q/A pairs or prose)")
    lora = Recommendation(TrainingType.LOCAL_LORA, 40 + 45 * behaviour, lora_cost)
    lora.reasons.append(f"{behaviour:.0%} of records teach behaviour (instructions or chat)")
    ft = Recommendation(TrainingType.LOCAL_FINE_TUNING, 30 + 45 * behaviour, ft_cost)
    ft.reasons.append("trains every weight: more memory and risk of forgetting than LoRA")
    both = min(facts, behaviour)
    hybrid_cost = _combined(rag_cost, lora_cost)
    ext_hybrid = Recommendation(TrainingType.EXTERNAL_HYBRID, 35 + 90 * both, hybrid_cost)
    loc_hybrid = Recommendation(TrainingType.LOCAL_HYBRID, 35 + 90 * both, hybrid_cost)
    for hybrid in (ext_hybrid, loc_hybrid):
        hybrid.reasons.append(
            f"both help: {facts:.0%} facts and {behaviour:.0%} behaviour"
            if both >= 0.2
            else "one side dominates: a hybrid adds cost for little gain"
        )
    recs = [rag, lora, ft, ext_hybrid, loc_hybrid]
    _apply_target(recs, goal)
    _apply_data_size(recs, profile)
    _apply_limits(recs, goal, model, machine)
    _apply_history(recs, history or {})
    return sorted(recs, key=lambda r: (r.refused is not None, -r.score))


def _combined(a: estimate.Estimate, b: estimate.Estimate) -> estimate.Estimate:
    # The stages run in parallel: memory adds up, time is the longer one.
    return estimate.Estimate(
        a.peak_memory_bytes + b.peak_memory_bytes,
        max(a.seconds, b.seconds),
        a.cost_usd + b.cost_usd,
        a.note,
    )


def _apply_target(recs: list[Recommendation], goal: Goal) -> None:
    for rec in recs:
        local = rec.training_type.runs_locally
        if (goal.target == "local") == local:
            rec.score += 15
            rec.reasons.append(f"matches the {goal.target} target")
        else:
            rec.score -= 15
            rec.reasons.append(
                f"answers from a {'local' if local else 'external'} model, "
                f"not the {goal.target} target"
            )
        if goal.private and not local:
            rec.refused = "private data: retrieved text would be sent to an external LLM"


def _apply_data_size(recs: list[Recommendation], profile: DatasetProfile) -> None:
    if profile.duplicate_ratio > 0.3:
        for rec in recs:
            rec.score -= 5
        recs[0].reasons.append(f"{profile.duplicate_ratio:.0%} duplicates: deduplicate first")
    if profile.tokens < MIN_TRAINING_TOKENS:
        for rec in recs:
            if rec.training_type in (TrainingType.LOCAL_LORA, TrainingType.LOCAL_FINE_TUNING):
                rec.score -= 20
                rec.reasons.append(f"only {profile.tokens} tokens: too little to learn from")


def _apply_limits(
    recs: list[Recommendation], goal: Goal, model: ModelSpec, machine: Resources
) -> None:
    memory = machine.gpu_memory_bytes if machine.has_gpu else machine.memory_bytes
    where = "GPU memory" if machine.has_gpu else "available memory"
    for rec in recs:
        if rec.refused:
            continue
        needed = rec.estimate.peak_memory_bytes
        if needed > memory:
            rec.refused = (
                f"needs ~{needed / 2**30:.1f} GB but {memory / 2**30:.1f} GB {where} "
                f"is there; pick a smaller base model or batch"
            )
        elif (
            rec.training_type is TrainingType.LOCAL_FINE_TUNING
            and model.params > FINE_TUNING_MAX_PARAMS
        ):
            limit = FINE_TUNING_MAX_PARAMS / 1e9
            rec.refused = (
                f"{model.params / 1e9:.1f} B parameters is above the {limit:.1f} B "
                "limit for full fine-tuning; use LoRA"
            )
        elif goal.budget_usd is not None and rec.estimate.cost_usd > goal.budget_usd:
            rec.refused = (
                f"costs ~${rec.estimate.cost_usd:.2f}, over the ${goal.budget_usd:.2f} budget"
            )
        else:
            rec.reasons.append(f"fits: ~{needed / 2**30:.2f} GB of {memory / 2**30:.1f} GB {where}")


def _apply_history(recs: list[Recommendation], history: dict[TrainingType, str]) -> None:
    """Measured outcomes of similar past datasets (see `outcomes`): what worked counts."""
    for rec in recs:
        if note := history.get(rec.training_type):
            bonus = 10 if note.startswith("+") else -10
            rec.score += bonus
            rec.reasons.append(note.lstrip("+-"))
