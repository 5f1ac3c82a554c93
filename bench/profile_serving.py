"""Where the serving engine's time goes, in process (no HTTP): `python -m bench.profile_serving`.

1. One 64-token greedy stream on the base through the batching scheduler, best of 5, against
   plain `generate` on the same model: with no adapter loaded, then with three loaded (base
   rows then run through PEFT's wrapped layers).
2. A batch of 8 rows over the 3 adapters and the base: the decode thread's CPU per step with the
   batched LoRA delta, with PEFT's per-adapter sub-batches (`adapter_names`), and with every row
   on one adapter (one torch thread, interleaved, min and median of 6).
3. `bench serving`'s 24 requests of 32 tokens over the 3 adapters, one at a time and from 8
   clients, through the scheduler: the process's CPU per token on both LoRA paths, a ratio the
   load moves less than wall-clock rates.
It is a profile, not a judged figure (`bench serving` judges over HTTP).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import DynamicCache

from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from lorag_lora.serving.engine import BaseRunner, Choice, Engine
from lorag_lora.serving.sampling import Sampling
from lorag_lora.serving.scheduler import Done, Target

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


def step_cpu_ms(runner: BaseRunner, adapters: list[str | None], steps: int = 32) -> float:
    """The decode thread's CPU per greedy step of one batch (after a prefill of 24 tokens)."""
    runner.changed()
    cache, ids = DynamicCache(), torch.randint(5, 200, (len(adapters), 24))
    with torch.inference_mode():
        out = runner(adapters, input_ids=ids, cache=cache, use_cache=True)
        started = time.thread_time()
        for _ in range(steps):
            ids = out.logits[:, -1].argmax(-1, keepdim=True)
            out = runner(adapters, input_ids=ids, cache=cache, use_cache=True)
    return (time.thread_time() - started) / steps * 1000


def mixed_batch(model: object, peft: object) -> None:
    """CPU per step of a mixed batch of 8: batched deltas, PEFT's sub-batches, one adapter."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU time holds still on a shared machine
    batched, per_adapter = BaseRunner(model), BaseRunner(model, batched_lora=False)
    batched.peft = per_adapter.peft = peft  # type: ignore[assignment]
    mixed: list[str | None] = ["a0", "a1", "a2", "a0", "a1", "a2", None, "a1"]
    cases: dict[str, tuple[BaseRunner, list[str | None]]] = {
        "mixed, batched LoRA": (batched, mixed),
        "mixed, PEFT sub-batches": (per_adapter, mixed),
        "one adapter for all 8": (per_adapter, ["a0"] * 8),
    }
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(6):
        for label, (runner, rows) in cases.items():
            other = per_adapter if runner is batched else batched
            other.changed()  # the runners share the model: only one's hooks may be on
            times[label].append(step_cpu_ms(runner, rows))
    batched.changed()
    per_adapter.changed()
    torch.set_num_threads(threads)
    for label, ms in times.items():
        print(f"batch of 8, {label}: {min(ms):.2f} ms CPU/step "
              f"(median {statistics.median(ms):.2f}), one torch thread")  # fmt: skip


async def throughput(engine: Engine, peft: object) -> None:
    """CPU per token of bench serving's requests alone and from 8 clients, both LoRA paths."""
    torch.set_num_threads(1)
    questions = ["What colour is the sky?", "Tell me about roses.", "Where does the road go?"]
    prompts = [engine.chat_ids(Choice("base", "base"), [{"role": "user", "content": q}])
               for q in questions]  # fmt: skip
    jobs = [(f"a{(c + i) % 3}", prompts[(c + i) % 3]) for c in range(8) for i in range(3)]
    base = engine.served_base

    async def one(runner: BaseRunner, adapter: str, prompt: list[int]) -> int:
        target = Target(runner, base.tokenizer, base.eos_ids, base.max_positions, adapter=adapter)
        gen = engine.scheduler.submit(target, prompt, Sampling(32, 0.0, 1.0, None, ()))
        return sum([e.completion_tokens async for e in gen.events() if isinstance(e, Done)])

    async def client(runner: BaseRunner, mine: list[tuple[str, list[int]]]) -> int:
        return sum([await one(runner, adapter, prompt) for adapter, prompt in mine])

    cpu: dict[tuple[bool, int], list[float]] = {}
    for batched in (True, False, True, False):
        runner = BaseRunner(engine.base.model, batched_lora=batched)
        runner.peft = peft  # type: ignore[assignment]
        for clients in (1, 8):
            runner.changed()
            share = len(jobs) // clients
            started = time.process_time()
            tokens = sum(await asyncio.gather(*(client(runner, jobs[c * share : (c + 1) * share])
                                                for c in range(clients))))  # fmt: skip
            cpu.setdefault((batched, clients), []).append(
                (time.process_time() - started) / tokens * 1000
            )
        runner.changed()
    for batched in (True, False):
        alone, eight = min(cpu[(batched, 1)]), min(cpu[(batched, 8)])
        label = "batched LoRA" if batched else "PEFT sub-batches"
        print(f"24 requests, {label}: {alone:.2f} ms CPU/token one at a time, {eight:.2f} from "
              f"8 clients: {alone / eight:.2f}x, one torch thread, no HTTP")  # fmt: skip


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lora = LoraSettings(models_dir=work / "models")
        torch.set_num_threads(lora.torch_threads)
        base = ModelManager(lora).load_for_serving(None)
        engine = Engine(base, None, None, work / "adapters", 8,  # type: ignore[arg-type]
                        decode_threads=lora.decode_threads)  # fmt: skip
        try:
            await compare(engine, "no adapter loaded")
            config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
            peft = get_peft_model(base.model, config, adapter_name="a0")
            for name in ("a1", "a2"):
                peft.add_adapter(name, config)
            engine.runner.peft = peft.eval()
            await compare(engine, "3 adapters loaded, base rows")
            mixed_batch(base.model, peft)
            await throughput(engine, peft)
        finally:
            engine.close()


if __name__ == "__main__":
    asyncio.run(main())
