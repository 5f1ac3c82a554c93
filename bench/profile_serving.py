"""Where a single stream's time goes: the scheduler in process against plain `generate`.

`python -m bench.profile_serving`: one 64-token greedy stream on the base through the batching
scheduler (no HTTP), best of 5, against plain `generate` on the same model, first with no adapter
loaded, then with three adapters loaded (base rows then run through PEFT's wrapped layers). It
prints two lines; it is a profile, not a judged figure (`bench serving` judges over HTTP).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model

from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from lorag_lora.serving.engine import Choice, Engine
from lorag_lora.serving.sampling import Sampling
from lorag_lora.serving.scheduler import Done

TOKENS, RUNS = 64, 5


async def scheduler_rate(engine: Engine, prompt: list[int]) -> float:
    started = time.perf_counter()
    gen = engine.submit(Choice("base", "base"), prompt, Sampling(TOKENS, 0.0, 1.0, None, ()))
    done = 0
    async for event in gen.events():
        if isinstance(event, Done):
            done = event.completion_tokens
    return done / (time.perf_counter() - started)


def generate_rate(model: object, prompt: list[int], pad: int) -> float:
    ids = torch.tensor([prompt])
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),  # type: ignore[attr-defined]
                             max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False,
                             pad_token_id=pad)  # fmt: skip
    return (out.shape[1] - ids.shape[1]) / (time.perf_counter() - started)


async def compare(engine: Engine, label: str) -> None:
    choice = Choice("base", "base")
    prompt = engine.chat_ids(choice, [{"role": "user", "content": "What colour is the sky?"}])
    pad = engine.base.tokenizer.pad_token_id
    await scheduler_rate(engine, prompt)  # warm-up
    ours = max([await scheduler_rate(engine, prompt) for _ in range(RUNS)])
    plain = max(generate_rate(engine.base.model, prompt, pad) for _ in range(RUNS))
    print(f"{label}: scheduler {ours:.1f} tok/s, plain generate {plain:.1f} tok/s, "
          f"ratio {ours / plain:.2f}")  # fmt: skip


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lora = LoraSettings(models_dir=work / "models")
        torch.set_num_threads(lora.torch_threads)
        base = ModelManager(lora).load_for_serving(None)
        engine = Engine(base, None, None, work / "adapters", 8)  # type: ignore[arg-type]
        try:
            await compare(engine, "no adapter loaded")
            config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
            peft = get_peft_model(base.model, config, adapter_name="a0")
            for name in ("a1", "a2"):
                peft.add_adapter(name, config)
            engine.runner.peft = peft.eval()
            await compare(engine, "3 adapters loaded, base rows")
        finally:
            engine.close()


if __name__ == "__main__":
    asyncio.run(main())
