"""The batched LoRA delta of a mixed-adapter batch (one gather-matmul per layer) against PEFT:
each row gets what PEFT gives it alone, and what PEFT's own mixed batch gives it."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from lorag_lora.serving.batched_lora import BatchedLora
from lorag_lora.serving.engine import BaseRunner


class Attention(nn.Module):
    """Two projections in sequence, named as LoRA targets them on LLaMA."""

    def __init__(self) -> None:
        super().__init__()
        self.q_proj = nn.Linear(16, 24)
        self.v_proj = nn.Linear(24, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.v_proj(torch.tanh(self.q_proj(x)))


def three_adapters(**extra: Any) -> Any:
    """A PEFT model with adapters of ranks 8 and 4 on both layers, and one on q_proj only."""
    torch.manual_seed(0)
    first = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False, **extra)
    peft = get_peft_model(Attention(), first, "a0")
    peft.add_adapter("a1", LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                                      init_lora_weights=False))  # fmt: skip
    peft.add_adapter("a2", LoraConfig(r=8, target_modules=["q_proj"], init_lora_weights=False))
    return peft.eval()


def alone(peft: Any, x: torch.Tensor, adapter: str | None) -> torch.Tensor:
    """One row through PEFT with only its adapter active (or none)."""
    if adapter is None:
        with peft.disable_adapter():
            return peft(x)
    peft.set_adapter(adapter)
    return peft(x)


ROWS = ["a0", "a1", None, "a2", "a1", "a0"]


@torch.inference_mode()
def test_each_row_gets_its_own_adapter_as_alone_and_as_in_pefts_mixed_batch():
    peft = three_adapters()
    x = torch.randn(len(ROWS), 3, 16)
    expected = torch.cat([alone(peft, x[i : i + 1], a) for i, a in enumerate(ROWS)])
    pefts_mixed = peft(x, adapter_names=[a or "__base__" for a in ROWS])
    batched = BatchedLora(peft)
    assert batched.usable
    peft.base_model.disable_adapter_layers()  # the base layers only; the hooks add the deltas
    batched.hook(ROWS)
    ours = peft.base_model.model(x)
    assert torch.allclose(ours, expected, atol=1e-5, rtol=1e-5)
    assert torch.allclose(ours, pefts_mixed, atol=1e-5, rtol=1e-5)
    batched.unhook()
    assert torch.equal(peft.base_model.model(x), alone(peft, x, None))  # no delta is left on


@torch.inference_mode()
def test_the_runner_batches_mixed_rows_and_a_single_adapter_batch_stays_on_peft():
    peft = three_adapters()
    x = torch.randn(len(ROWS), 3, 16)
    expected = torch.cat([alone(peft, x[i : i + 1], a) for i, a in enumerate(ROWS)])
    runner = BaseRunner(nn.Identity())
    runner.peft = peft
    assert torch.allclose(runner(ROWS, x=x), expected, atol=1e-5, rtol=1e-5)
    assert runner._batched is not None and runner._batched.usable
    # Every row on one adapter: PEFT's plain path, with the adapter layers on again.
    assert torch.allclose(runner(["a1"] * 2, x=x[:2]), alone(peft, x[:2], "a1"))
    assert torch.allclose(runner(ROWS, x=x), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("extra", [{"use_dora": True}, {"lora_bias": True}])
@torch.inference_mode()
def test_variants_it_cannot_batch_exactly_keep_pefts_path(extra: dict[str, Any]):
    peft = three_adapters(**extra)
    assert not BatchedLora(peft).usable
    runner = BaseRunner(nn.Identity())
    runner.peft = peft
    rows = ["a1", "a2", None]  # not the DoRA/bias adapter: PEFT refuses DoRA in mixed batches
    x = torch.randn(3, 2, 16)
    expected = torch.cat([alone(peft, x[i : i + 1], a) for i, a in enumerate(rows)])
    assert torch.allclose(runner(rows, x=x), expected, atol=1e-5, rtol=1e-5)
