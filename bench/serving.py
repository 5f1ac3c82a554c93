"""The lora-service's OpenAI API under load (issue 14), over HTTP on the tiny LLaMA.

The API app and its engine run in this process (uvicorn on a free port, the real registry in
Postgres and adapters in S3), as they do in the service; the clients are httpx in a process of
their own (`bench.serving_client`), as real clients are, so their SSE parsing does not take
the server's GIL. Figures: tokens/s of 8 concurrent clients over 3 adapters against the same
requests one at a time (both through that client process), time to first token at 8 clients, a
cached adapter switch, and one stream against plain `generate`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model

from bench import adapters
from bench.report import Figure, at_least, at_most, figure, percentile
from lorag_core.db.pool import open_pool
from lorag_core.service.http import ApiServer
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from lorag_local.stack import free_port
from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from lorag_lora.openai_keys import KeyStore
from lorag_lora.serving.app import create_app
from lorag_lora.serving.engine import Choice, Engine

CLIENTS, PER_CLIENT, TOKENS = 8, 3, 32
CONCURRENT_ROUNDS = 3
REPO = Path(__file__).resolve().parent.parent  # the client process imports `bench`
QUESTIONS = ["What colour is the sky?", "Tell me about roses.", "Where does the road go?"]


async def register_adapters(settings: Settings, pool: Any, base: Any, n: int) -> list[str]:
    """n adapters with random LoRA weights, registered and stored as a job leaves them."""
    objects = ObjectStore.from_settings(settings.s3)
    objects.ensure_buckets(settings.s3.buckets)  # no service has made them in a bench run
    names = []
    for i in range(n):
        torch.manual_seed(i)
        config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        model = get_peft_model(base.fresh_copy(), config)
        name = f"bench-serve-{uuid.uuid4().hex[:8]}"
        await adapters.register(pool, objects, base, model, name)
        names.append(name)
    return names


def plain_generate_rate(engine: Engine, pristine: Any, tokens: int, runs: int) -> float:
    """Plain `generate` on a separately loaded base model (no adapter layers in it)."""
    base = engine.base
    question = [{"role": "user", "content": QUESTIONS[0]}]
    ids = torch.tensor([engine.chat_ids(Choice("base", "base"), question)])
    model = pristine.model
    done, started = 0, time.perf_counter()
    with torch.inference_mode():
        for _ in range(runs):
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=tokens, do_sample=False,
                                 pad_token_id=base.tokenizer.pad_token_id)  # fmt: skip
            done += out.shape[1] - ids.shape[1]
    return done / (time.perf_counter() - started)


class Clients:
    """The client process (`bench.serving_client`): one JSON command in, one JSON answer out."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, base_url: str) -> Clients:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.serving_client", base_url, cwd=REPO,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(proc)

    async def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the client process ended (exit {await self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def chats(self, clients: list[list[tuple[str, str, int]]],
                    ttft: bool = False) -> dict[str, Any]:  # fmt: skip
        return await self.ask(op="chats", clients=clients, ttft=ttft)

    async def one_token(self, models: list[str]) -> list[float]:
        ms: list[float] = (await self.ask(op="one_token", models=models))["ms"]
        return ms

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def run(settings: Settings, work: Path) -> list[Figure]:
    lora = LoraSettings(models_dir=work / "models")
    torch.set_num_threads(lora.torch_threads)
    base = ModelManager(lora).load_for_serving(None)
    pool = await open_pool(settings.postgres_dsn)
    engine = None
    try:
        pristine = ModelManager(lora).load(None)
        names = await register_adapters(settings, pool, pristine, 3)
        # configured as the lora-service configures its engine
        engine = Engine(base, ObjectStore.from_settings(settings.s3), pool, work / "adapters", 8,
                        max_batch=16, max_queue=64, decode_threads=lora.decode_threads,
                        stream_interval_s=lora.stream_interval_ms / 1000)  # fmt: skip
        keys = KeyStore(None, {}, required=False, pool_of=lambda: pool)
        port = free_port()
        server = ApiServer(create_app(lambda: engine, 128, keys), "127.0.0.1", port)
        await server.start()
        clients = await Clients.start(f"http://127.0.0.1:{port}")
        try:
            figures = await measure(clients, engine, pristine, names)
        finally:
            await clients.close()
            await server.stop()
    finally:
        if engine is not None:
            engine.close()
        await pool.close()
    return figures


async def measure(clients: Clients, engine: Engine, pristine: Any,
                  names: list[str]) -> list[Figure]:  # fmt: skip
    # Load every adapter once: the figures are about cached adapters.
    await clients.chats([[(name, "Hi", 2) for name in names]])
    jobs = [(names[(c + i) % 3], QUESTIONS[(c + i) % 3], TOKENS) for c in range(CLIENTS)
            for i in range(PER_CLIENT)]  # fmt: skip
    alone_rates: list[float] = []
    together_rates: list[float] = []
    ttfts: list[float] = []
    # Interleaved, best of: one round is about a second of serving, and this machine's speed
    # swings more than that between runs minutes apart (one round each read 2.0-4.0).
    for _ in range(CONCURRENT_ROUNDS):
        alone = await clients.chats([jobs])  # one client: the requests one at a time
        alone_rates.append(alone["tokens"] / alone["seconds"])
        together = await clients.chats(
            [jobs[c * PER_CLIENT : (c + 1) * PER_CLIENT] for c in range(CLIENTS)], ttft=True
        )
        together_rates.append(together["tokens"] / together["seconds"])
        ttfts += together["ttfts_ms"]
    same = await clients.one_token([names[0]] * 40)
    switching = await clients.one_token([names[i % 2] for i in range(40)])
    switch_ms = max(0.0, percentile(switching, 0.5) - percentile(same, 0.5))
    # Interleaved, best of 5 each: on a shared machine, noise dwarfs the difference.
    stream_tokens, runs, pairs = 64, 5, []
    stream = [[("base", QUESTIONS[0], stream_tokens)]]
    await clients.chats(stream)  # warm-up
    await asyncio.to_thread(plain_generate_rate, engine, pristine, stream_tokens, 1)
    for _ in range(runs):
        streamed = await clients.chats(stream)
        ours = streamed["tokens"] / streamed["seconds"]
        plain = await asyncio.to_thread(plain_generate_rate, engine, pristine, stream_tokens, 1)
        pairs.append((ours, plain))
    single, plain = max(p[0] for p in pairs), max(p[1] for p in pairs)
    return [
        figure("lora_serving.concurrent_tokens_per_s", max(together_rates), "tokens/s",
               baseline=max(alone_rates),
               baseline_is="the same requests one at a time, over HTTP from the same client "
                           f"process (best of {CONCURRENT_ROUNDS}, interleaved)",
               target=at_least(3.0, of="ratio", issue=14), n=len(jobs),
               rounds=[round(r, 1) for r in together_rates],
               baseline_rounds=[round(r, 1) for r in alone_rates],
               measures=f"{CLIENTS} streaming clients x {PER_CLIENT} requests of {TOKENS} "
                        "tokens over 3 adapters, greedy, in a client process of their own, "
                        f"best of {CONCURRENT_ROUNDS}"),
        figure("lora_serving.ttft_p50_ms", percentile(ttfts, 0.5), "ms", target=None,
               n=len(ttfts), measures=f"time to first token at {CLIENTS} concurrent clients, "
                                     f"{CONCURRENT_ROUNDS} rounds"),
        figure("lora_serving.ttft_p99_ms", percentile(ttfts, 0.99), "ms", target=None,
               n=len(ttfts), measures=f"time to first token at {CLIENTS} concurrent clients, "
                                     f"{CONCURRENT_ROUNDS} rounds"),
        figure("lora_adapters.cached_switch_p50_ms", switch_ms, "ms",
               target=at_most(5.0, issue=14), n=len(switching),
               alternating_p50_ms=round(percentile(switching, 0.5), 2),
               same_adapter_p50_ms=round(percentile(same, 0.5), 2),
               measures="p50 of 1-token requests alternating 2 cached adapters minus p50 of "
                        "the same adapter repeated (HTTP)"),
        figure("lora_serving.tokens_per_s", single, "tokens/s", baseline=plain,
               baseline_is="plain generate on a pristine copy of the base model, same prompt "
                           "and length, best of 5 interleaved",
               target=at_least(0.8, of="ratio", issue=14), n=runs,
               measures="one client streaming from the base model over HTTP (3 adapters "
                        "loaded), best of 5"),
    ]  # fmt: skip
