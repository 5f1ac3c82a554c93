"""A mixed-adapter batch's LoRA deltas in one gather-matmul per layer, as Punica and S-LoRA do.

PEFT's `adapter_names=` path splits each LoRA layer's input into one sub-batch per adapter and
scatters the results back: about ten small ops per adapter per layer, nearly half of a batch-of-8
decode step on the tiny model. Here every loaded adapter's A and B weights are stacked per layer
(slot 0 all zeros: a base row, or an adapter that does not target the layer), each row's slice
is gathered once when the batch's rows change, and a step adds `(x @ A_row) @ B_row * scale_row`
for all rows at once with two batched matmuls. The adapter layers themselves are switched off
(PEFT then runs only the base layer), and a forward hook adds the delta.

Only plain LoRA on linear layers is batched this way; DoRA and other variants, LoRA biases,
other layer types or `modules_to_save` wrappers keep PEFT's own path (`usable` is False).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from peft.tuners.lora import Linear as LoraLinear
from peft.tuners.lora import LoraLayer
from peft.utils.other import AuxiliaryTrainingWrapper
from torch import nn


@dataclass
class Stack:
    """One layer's adapters, stacked: slot i+1 is `names[i]`, slot 0 adds nothing."""

    layer: LoraLinear
    slots: dict[str, int]
    a: torch.Tensor  # (slots, in, r_max): A transposed, zero-padded to the largest rank
    b: torch.Tensor  # (slots, r_max, out): B transposed
    scale: torch.Tensor  # (slots,)


class BatchedLora:
    """Adds each row's own adapter delta to every LoRA layer of a PEFT model in one pass."""

    def __init__(self, peft: Any) -> None:
        wrappers = [m for m in peft.modules() if isinstance(m, AuxiliaryTrainingWrapper)]
        layers = [m for m in peft.modules() if isinstance(m, LoraLayer)]
        self.usable = not wrappers and all(_plain(m) for m in layers)
        self.stacks = [_stack(m) for m in layers] if self.usable else []
        self._hooks: list[Any] = []

    def hook(self, adapters: list[str | None]) -> None:
        """From now on, row i of every batch gets `adapters[i]`'s delta (None: none)."""
        self.unhook()
        for stack in self.stacks:
            index = torch.tensor([stack.slots.get(a or "", 0) for a in adapters],
                                 device=stack.a.device)  # fmt: skip
            a, b = stack.a.index_select(0, index), stack.b.index_select(0, index)
            scale = stack.scale.index_select(0, index).view(-1, 1, 1)
            add = partial(_add_delta, a=a, b=b, scale=scale)
            self._hooks.append(stack.layer.register_forward_hook(add))

    def unhook(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []


def _plain(layer: Any) -> bool:
    """Plain LoRA on a linear layer: what the batched delta computes exactly."""
    return (
        isinstance(layer, LoraLinear)
        and isinstance(layer.get_base_layer(), nn.Linear)
        and not layer.merged
        and not any(layer.lora_variant.values())  # DoRA, aLoRA…
        and not any(getattr(layer, "lora_bias", {}).values())
        and all(isinstance(layer.lora_A[n], nn.Linear) for n in layer.lora_A)
    )


def _stack(layer: Any) -> Stack:  # a LoraLinear (torch types its submodules loosely)
    names = list(layer.lora_A.keys())
    base = layer.get_base_layer()
    rank = max((layer.lora_A[n].weight.shape[0] for n in names), default=1)
    weight = layer.lora_A[names[0]].weight if names else base.weight
    a = torch.zeros(len(names) + 1, base.in_features, rank, dtype=weight.dtype,
                    device=weight.device)  # fmt: skip
    b = torch.zeros(len(names) + 1, rank, base.out_features, dtype=weight.dtype,
                    device=weight.device)  # fmt: skip
    scale = torch.zeros(len(names) + 1, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        for slot, name in enumerate(names, start=1):
            r = layer.lora_A[name].weight.shape[0]
            a[slot, :, :r] = layer.lora_A[name].weight.T
            b[slot, :r, :] = layer.lora_B[name].weight.T
            scale[slot] = float(layer.scaling[name])
    slots = {name: slot for slot, name in enumerate(names, start=1)}
    return Stack(layer, slots, a, b, scale)


def _add_delta(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor, *,
               a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """The base layer's output plus each row's `B(A(x)) * scale`, in PEFT's order of ops."""
    x = args[0]
    if x.dim() != 3 or x.shape[0] != a.shape[0]:
        raise RuntimeError(f"batched LoRA expects ({a.shape[0]}, seq, features), got {x.shape}")
    delta = torch.bmm(torch.bmm(x.to(a.dtype), a), b) * scale
    return output + delta.to(output.dtype)
