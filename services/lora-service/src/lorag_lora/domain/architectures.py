"""LoRA defaults per model architecture, and checking requested target modules against a model."""

from __future__ import annotations

from collections.abc import Iterable

# Attention projections are the usual LoRA targets; names differ between architectures.
DEFAULT_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"),
    "gemma": ("q_proj", "v_proj"),
    "phi3": ("qkv_proj",),
    "gpt2": ("c_attn",),
    "gpt_neox": ("query_key_value",),
    "falcon": ("query_key_value",),
}
FALLBACK_TARGETS = ("q_proj", "v_proj")


class TargetModulesMissing(ValueError):
    """Requested target modules do not exist in the model."""


def default_targets(model_type: str) -> tuple[str, ...]:
    """The LoRA target modules lorag uses for an architecture when none are given."""
    return DEFAULT_TARGETS.get(model_type, FALLBACK_TARGETS)


def check_targets(requested: Iterable[str], linear_names: Iterable[str]) -> tuple[str, ...]:
    """Return the requested targets if every one names a linear layer of the model, else raise."""
    wanted = tuple(requested)
    leaves = {name.rsplit(".", 1)[-1] for name in linear_names}
    missing = [t for t in wanted if t not in leaves]
    if not wanted or missing:
        raise TargetModulesMissing(
            f"target modules {missing or '(none)'} are not linear layers of this model; "
            f"it has: {', '.join(sorted(leaves))}"
        )
    return wanted
