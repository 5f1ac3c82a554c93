"""LoRA training throughput, padding waste, adapter switching and serving speed on the tiny LLaMA.

Baselines run in the same process on the same model, data and batch: a plain PEFT + torch loop,
HF Trainer with its default padding collator, and plain `generate`.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model

from bench import adapters, lora_job, peak_rss
from bench.report import Figure, at_least, figure
from lorag_core.db.pool import open_pool
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from lorag_lora.domain.batching import TokenRow, collate, packed_rows
from lorag_lora.serving.engine import Engine
from lorag_lora.training import NoHooks, Plan, train

BATCH, SEQ, STEPS = 8, 128, 30
# A job of about 200k tokens (one epoch of its dataset): its fixed costs (claim, load, store)
# weigh as in a small real job; `lora_job.fixed_seconds` reports them on their own.
# Rounds, interleaved, best of each side: single rounds of one loop spread wider than the gap
# the target allows (make bench, 2026-12-02: the service's loop 9,345-10,812 tokens/s over five
# rounds, the textbook loop 9,731-10,579; both in the figure line's rounds).
JOB_STEPS, JOB_ROUNDS = 200, 3
LOOP_ROUNDS = 5
# One torch thread for every loop here, ours and the baselines alike. Measured on the shared
# 2-core machine: with 2 OpenMP threads in the main thread, 10 steps took 16-18 CPU seconds
# (threads spinning at barriers while the other core is taken) against 1 with one thread, and
# ran 15x slower; which loop hit that collapse, not the loop, decided the ratio.
TORCH_THREADS = 1


def lora_model(base: Any) -> Any:
    torch.manual_seed(0)
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
    return get_peft_model(base.fresh_copy(), config)


def token_rows(base: Any, lengths: list[int]) -> list[TokenRow]:
    rng = random.Random(0)
    vocab = len(base.tokenizer)
    rows = []
    for n in lengths:
        ids = [rng.randrange(3, vocab) for _ in range(n)]
        rows.append(TokenRow(ids, ids))
    return rows


def ours(base: Any, rows: list[TokenRow]) -> float:
    """Tokens/s of the service's loop (useful tokens: padding excluded)."""
    plan = Plan(lr=2e-4, batch_size=BATCH, seed=0, max_steps=STEPS, eval_every=10**9,
                checkpoint_every=10**9, pad_id=base.tokenizer.pad_token_id)  # fmt: skip
    return train(lora_model(base), rows, [], plan, NoHooks()).metrics["tokens_per_s"]


def plain_loop(base: Any, rows: list[TokenRow]) -> float:
    """The textbook PEFT + torch loop over the same batches."""
    batches = [collate(rows[i : i + BATCH], 0) for i in range(0, len(rows), BATCH)]
    return lora_job.textbook_steps(lora_model(base), batches, STEPS, 2e-4)


def hf_trainer(base: Any, rows: list[TokenRow], out: Path) -> float:
    """Useful tokens/s of HF Trainer with the default causal-LM collator (pads to the longest)."""
    from transformers import DataCollatorForLanguageModeling, Trainer, TrainingArguments

    counted = [0]
    pad = DataCollatorForLanguageModeling(base.tokenizer, mlm=False)

    def collator(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = pad(features)
        counted[0] += int(batch["attention_mask"].sum())
        return batch

    data = [{"input_ids": r.input_ids} for r in rows]  # a list is a map-style dataset
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=BATCH,
                             max_steps=STEPS, learning_rate=2e-4, report_to=[],
                             save_strategy="no", logging_steps=10**6, disable_tqdm=True,
                             use_cpu=True, dataloader_num_workers=0, seed=0)  # fmt: skip
    trainer = Trainer(model=lora_model(base), args=args, train_dataset=data,
                      data_collator=collator)  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    return counted[0] / (time.perf_counter() - started)


async def adapters_and_serving(settings: Settings, base: Any, work: Path) -> list[Figure]:
    objects = ObjectStore.from_settings(settings.s3)
    pool = await open_pool(settings.postgres_dsn)
    names = []
    try:
        for i in range(2):
            model = lora_model(base)
            rows = packed_rows(token_rows(base, [100] * 40), SEQ, i)
            train(model, rows, [], Plan(lr=1e-2, batch_size=BATCH, seed=i, max_steps=5),
                  NoHooks())  # fmt: skip
            name = f"bench-{uuid.uuid4().hex[:8]}"
            await adapters.register(pool, objects, base, model, name)
            names.append(name)
        engine = Engine(base, objects, pool, work / "adapters", 8)
        cold = []
        try:
            for name in names:
                started = time.perf_counter()
                choice = await engine.choose(name)
                with engine.scheduler.model_lock:
                    engine._activate(choice)
                cold.append((time.perf_counter() - started) * 1000)
        finally:
            engine.close()
    finally:
        await pool.close()
    # Issue 5 asks for the cold load without a target: informational. The cached switch and
    # serving speed are measured over HTTP by the serving suite (issue 14).
    return [
        figure("lora_adapters.cold_load_ms", sum(cold) / len(cold), "ms", target=None,
               n=len(cold), measures="S3 fetch + sha256 + load, mean"),
    ]  # fmt: skip


async def run(settings: Settings, work: Path) -> list[Figure]:
    torch.set_num_threads(TORCH_THREADS)
    # The bench process may hold earlier suites' models: count from here, not the process's life.
    peak_rss.reset_peak()
    base = ModelManager(LoraSettings(models_dir=work / "models")).load(None)
    fixed = packed_rows(token_rows(base, [SEQ] * 400), SEQ, 0)
    ours(base, fixed[: BATCH * 3])  # warm-up
    # Interleaved, best of LOOP_ROUNDS: on a shared 2-core machine, noise dwarfs the difference.
    pairs = [(ours(base, fixed), plain_loop(base, fixed)) for _ in range(LOOP_ROUNDS)]
    mine, plain = max(p[0] for p in pairs), max(p[1] for p in pairs)
    rss_mib = peak_rss.peak_bytes() / 2**20
    rng = random.Random(1)
    varied = token_rows(base, [rng.randint(16, SEQ) for _ in range(600)])
    runs = [(ours(base, packed_rows(varied, SEQ, 0)), hf_trainer(base, varied, work / f"hf{i}"))
            for i in range(2)]  # fmt: skip
    useful_ours, useful_hf = max(r[0] for r in runs), max(r[1] for r in runs)
    # Targets: issue 5 (training >= 0.95 of the plain loop, restated in issue 17; useful tokens/s
    # on varied lengths >= 1.5x HF Trainer). Peak RSS: issue 5 asks for it without a target.
    figures = [
        figure("lora_training.tokens_per_s", mine, "tokens/s", baseline=plain,
               baseline_is=f"plain PEFT + torch loop, batch {BATCH}x{SEQ}",
               target=at_least(0.95, of="ratio", issue=5), n=STEPS,
               rounds=[round(p[0]) for p in pairs], baseline_rounds=[round(p[1]) for p in pairs]),
        figure("lora_training.useful_tokens_per_s_varied_lengths", useful_ours, "tokens/s",
               baseline=useful_hf, baseline_is="HF Trainer, default padding collator",
               target=at_least(1.5, of="ratio", issue=5), n=STEPS),
        figure("lora_training.peak_rss_mib", rss_mib, "MiB", target=None,
               measures="bench process while training the tiny model"),
    ]  # fmt: skip
    return (
        figures
        + await through_a_job(settings, base, work)
        + await adapters_and_serving(settings, base, work)
    )


async def through_a_job(settings: Settings, base: Any, work: Path) -> list[Figure]:
    """Issue 17: tokens/s of a LOCAL_LORA job, request to SUCCEEDED, against the plain loop."""
    from lorag_local.stack import free_port
    from tests.integration.test_lora_helpers import wait_api
    from tests.support.processes import start_service

    defaults = LoraSettings.model_fields
    env = {
        "LORAG_LORA_MODELS_DIR": str(work / "models"), "LORAG_LORA_WORK_DIR": str(work / "lora"),
        "LORAG_LORA_API_PORT": str(free_port()), "LORAG_LORA_TORCH_THREADS": str(TORCH_THREADS),
        # The service's defaults, not the test suite's short intervals.
        "LORAG_LORA_CHECKPOINT_EVERY": str(defaults["checkpoint_every"].default),
        "HF_HUB_OFFLINE": "1",
    }  # fmt: skip
    objects = ObjectStore.from_settings(settings.s3)
    data = lora_job.corpus(JOB_STEPS * BATCH * 3)  # about one epoch: no row is seen twice
    params = lora_job.parameters(JOB_STEPS, BATCH, SEQ, f"bench-job-{uuid.uuid4().hex[:8]}")
    began = time.perf_counter()
    rows = lora_job.same_rows(base, data, params)
    tokenise_s = time.perf_counter() - began  # the floor of the job's tokenising and packing
    logs = work / "logs-lora-job"
    # A loaded machine can take over a minute to import torch: the bench waits longer than tests.
    tracker = await asyncio.to_thread(start_service, "lorag_migration", logs, ready_timeout=300)
    lora = await asyncio.to_thread(start_service, "lorag_lora", logs, ready_timeout=300, **env)
    lora.api_port = int(env["LORAG_LORA_API_PORT"])  # type: ignore[attr-defined]
    await asyncio.to_thread(wait_api, lora, 300)
    runs, plain = [], []
    try:
        uri = await asyncio.to_thread(lora_job.upload, objects, data)  # the bucket exists now
        # Warm-up: the service's first job loads the base model (kept loaded afterwards).
        await lora_job.submit_and_wait(settings, uri, params.model_copy(update={"max_steps": 2}))
        for _ in range(JOB_ROUNDS):  # interleaved, best of: the machine is shared
            runs.append(await lora_job.submit_and_wait(settings, uri, params))
            # In a worker thread, as the service trains.
            plain.append(await asyncio.to_thread(lora_job.plain_loop, base, rows, params))
    finally:
        await asyncio.to_thread(lora.stop)
        await asyncio.to_thread(tracker.stop)
    best = max(runs, key=lambda r: r.tokens_per_s)
    # Target: issue 17 ("LoRA tokens/s through a submitted job, from request to SUCCEEDED ...
    # against the plain loop"), the >= 0.95 of issue 5.
    return [
        figure("lora_job.tokens_per_s", best.tokens_per_s, "tokens/s", baseline=max(plain),
               baseline_is=f"plain PEFT + torch loop, same rows, batch {BATCH}x{SEQ}",
               target=at_least(0.95, of="ratio", issue=17), n=JOB_STEPS,
               measures="job tokens (its metrics) / request to SUCCEEDED",
               seconds=round(best.seconds, 2), parts=lora_job.rounded(best.parts),
               runs=[round(r.tokens_per_s, 1) for r in runs],
               plain_runs=[round(p, 1) for p in plain]),
        figure("lora_job.fixed_seconds", best.seconds - best.parts["training_loop"], "s",
               target=None, measures="request to SUCCEEDED minus the training loop",
               parts=lora_job.rounded(best.parts),
               tokenise_same_file_in_bench_s=round(tokenise_s, 3)),
        figure("lora_job.loop_tokens_per_s", best.tokens / best.parts["training_loop"],
               "tokens/s", baseline=max(plain), target=None,
               measures="the service's loop inside the job (checkpoints, progress reports)",
               baseline_is="plain PEFT + torch loop"),
    ]  # fmt: skip
