"""Requests waiting together are prefilled together (one forward pass, prompts left-padded) and
each decodes exactly the tokens it decodes alone: the real Scheduler on the tiny base model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import torch

from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from lorag_lora.serving.engine import WholeModelRunner
from lorag_lora.serving.handoff import Delta, Done, Failed
from lorag_lora.serving.sampling import Sampling
from lorag_lora.serving.scheduler import Scheduler, Target

PROMPTS = ["Hi", "What colour is the sky today?", "Tell me about roses and the long road home"]


class CountingRunner(WholeModelRunner):
    """The model's forward passes, each call's batch size noted."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.batches: list[int] = []

    def __call__(self, adapters: list[str | None], **inputs: Any) -> Any:
        self.batches.append(len(adapters))
        return super().__call__(adapters, **inputs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Any:
    models = tmp_path_factory.mktemp("models")
    return ModelManager(LoraSettings(models_dir=Path(models))).load(None)


def target(tiny: Any, runner: CountingRunner, fail: bool = False) -> Target:
    def prepare() -> None:
        raise RuntimeError("the adapter would not load")

    return Target(runner, tiny.tokenizer, frozenset(), 1 << 20,
                  prepare=prepare if fail else None)  # fmt: skip


async def answers(scheduler: Scheduler, targets: list[Target], prompts: list[list[int]],
                  max_tokens: int = 12) -> list[Any]:  # fmt: skip
    """Submit every request while the decode thread waits, then collect each one's outcome."""
    inbox = scheduler.inbox(live=False)
    with scheduler.model_lock:  # the decode thread admits them in one go once this is released
        for i, (t, prompt) in enumerate(zip(targets, prompts, strict=True)):
            scheduler.submit(t, prompt, Sampling(max_tokens=max_tokens), inbox, i)
        await asyncio.sleep(0.05)
    texts: dict[int, list[str]] = {i: [] for i in range(len(prompts))}
    ends: dict[int, Any] = {}
    while len(ends) < len(prompts):
        for index, event in await asyncio.wait_for(inbox.take(), 30):
            if isinstance(event, Delta):
                texts[index].append(event.text)
            elif isinstance(event, Done | Failed):
                ends[index] = event
    return [("".join(texts[i]), ends[i]) for i in range(len(prompts))]


async def test_requests_waiting_together_are_prefilled_in_one_pass_and_decode_as_alone(tiny):
    prompts = [tiny.tokenizer.encode(p) for p in PROMPTS]
    assert len({len(p) for p in prompts}) == len(prompts), "prompts of different lengths"
    scheduler = Scheduler(max_batch=8, max_queue=8, device=torch.device("cpu"))
    try:
        alone = []
        for prompt in prompts:
            runner = CountingRunner(tiny.model)
            (answer,) = await answers(scheduler, [target(tiny, runner)], [prompt])
            alone.append(answer)
        runner = CountingRunner(tiny.model)
        together = await answers(scheduler, [target(tiny, runner)] * 3, prompts)
    finally:
        scheduler.stop()
    # one prefill for the three (their first tokens), then 11 decode steps of the three
    assert runner.batches == [3] * 12
    assert [text for text, _ in together] == [text for text, _ in alone]
    assert all(isinstance(end, Done) and end.completion_tokens == 12 for _, end in together)
    assert len({text for text, _ in alone}) == 3  # the prompts do lead to different answers


async def test_a_request_whose_adapter_will_not_load_fails_alone(tiny):
    prompts = [tiny.tokenizer.encode(p) for p in PROMPTS[:2]]
    scheduler = Scheduler(max_batch=8, max_queue=8, device=torch.device("cpu"))
    runner = CountingRunner(tiny.model)
    try:
        good, bad = target(tiny, runner), target(tiny, runner, fail=True)
        outcomes = await answers(scheduler, [good, bad], prompts)
    finally:
        scheduler.stop()
    assert isinstance(outcomes[0][1], Done) and outcomes[0][0]
    assert isinstance(outcomes[1][1], Failed) and "would not load" in str(outcomes[1][1].error)
    assert runner.batches[0] == 1, "the other request was prefilled on its own"
