"""Getting a private copy of the base model ready to train: LoRA layers, or every weight."""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig, get_peft_model

from lorag_lora.adapters.models import BaseModel
from lorag_lora.domain.architectures import check_targets, default_targets


def lora_config_of(params: Any, model_type: str) -> dict[str, Any]:
    """The LoRA settings a job trains with, as saved in the manifest and the event."""
    targets = params.target_modules or default_targets(model_type)
    return {"r": params.r, "alpha": params.alpha, "dropout": params.dropout,
            "target_modules": list(targets)}  # fmt: skip


def prepare_model(base: BaseModel, params: Any, full: bool) -> Any:
    """A trainable copy: all weights (full fine-tuning) or LoRA layers on the target modules."""
    torch.manual_seed(params.seed)  # LoRA A matrices are initialised from the global RNG
    model = base.fresh_copy()
    if full:
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    config = lora_config_of(params, base.model_type)
    linear = (n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    targets = check_targets(config["target_modules"], linear)
    peft_config = LoraConfig(
        r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
        target_modules=list(targets), task_type="CAUSAL_LM",
    )  # fmt: skip
    return get_peft_model(model, peft_config)
