"""LoRA training through the real path: a LOCAL_LORA job published on `job.requested`, timed from
the request to SUCCEEDED in the jobs table, its tokens read from the job's own metrics.

The baseline is the textbook PEFT + torch loop over the same token rows (the service's own
tokenisation and packing of the same file), the same LoRA settings, batch, steps and threads,
timed over the loop alone. Each job's progress log splits its wall time into where it went.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch
from peft import LoraConfig, get_peft_model

from bench.waiting import JobEnds
from lorag_core.contracts import DatasetRef, JobRequested, LoraParameters
from lorag_core.messaging.topics import JOB_REQUESTED
from lorag_core.settings import Settings
from lorag_core.storage import ObjectStore
from lorag_lora.domain.batching import TokenRow, encode_all, epoch_batches, packed_rows, split
from lorag_lora.domain.datasets import parse_file
from lorag_lora.tuning import lora_config_of

BUCKET, FILE = "lorag-datasets", "corpus.txt"
WORDS = ("amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo")


def corpus(paragraphs: int) -> bytes:
    """Plain-text paragraphs (one example each), about 60 tokens apiece."""
    return "\n\n".join(
        f"Log {i}: the {WORDS[i % 9]} valve of unit {i * 7 % 113} was checked by crew {i % 5}; "
        f"pressure read {i % 37 + 10} bar, the {WORDS[(i * 4) % 9]} seal was {i % 3 + 1} years "
        f"old and the next visit is due in week {i % 52 + 1}."
        for i in range(paragraphs)
    ).encode()


def parameters(steps: int, batch: int, seq: int, adapter: str) -> LoraParameters:
    # eval_ratio=0: the plain loop evaluates nothing, so neither does the job.
    return LoraParameters(adapter=adapter, max_steps=steps, batch_size=batch, max_seq_len=seq,
                          eval_ratio=0.0, seed=0)  # fmt: skip


def same_rows(base: Any, data: bytes, params: LoraParameters) -> list[TokenRow]:
    """The rows the service trains on: its parsing, split, encoding and packing of the file."""
    train_ex, _ = split(parse_file(FILE, data), params.eval_ratio, params.seed)
    rows, _ = encode_all(train_ex, base.encoder(), params.max_seq_len, "truncate")
    return packed_rows(rows, params.max_seq_len, params.seed)


def plain_loop(base: Any, rows: list[TokenRow], params: LoraParameters) -> float:
    """Useful tokens/s of the textbook PEFT + torch loop (the loop alone, model built before)."""
    config = lora_config_of(params, base.model_type)
    torch.manual_seed(params.seed)
    model = get_peft_model(base.fresh_copy(), LoraConfig(
        r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
        target_modules=config["target_modules"], task_type="CAUSAL_LM"))  # fmt: skip
    pad = base.tokenizer.pad_token_id
    batches = epoch_batches(rows, params.batch_size, params.seed, 0, pad, "pack")
    assert params.max_steps is not None
    return textbook_steps(model, batches, params.max_steps, params.lr)


def textbook_steps(model: Any, batches: list[Any], steps: int, lr: float) -> float:
    """Useful tokens/s of `steps` plain AdamW steps over `batches` (padding excluded)."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    started, tokens = time.perf_counter(), 0
    for step in range(steps):
        batch = batches[step % len(batches)]
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    labels=batch.labels)  # fmt: skip
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        tokens += batch.useful_tokens
    return tokens / (time.perf_counter() - started)


@dataclass
class JobRun:
    """One job from request to SUCCEEDED, and where its seconds went (from its progress log)."""

    tokens: float
    seconds: float
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def upload(objects: ObjectStore, data: bytes) -> str:
    prefix = f"bench-lora-job-{uuid.uuid4().hex[:8]}"
    objects.put_bytes(BUCKET, f"{prefix}/{FILE}", data)
    return f"s3://{BUCKET}/{prefix}/"


async def submit_and_wait(
    settings: Settings, uri: str, params: LoraParameters, timeout: float = 900
) -> JobRun:
    """Publish a LOCAL_LORA request; poll the jobs table until it is SUCCEEDED (or fails)."""
    from aiokafka import AIOKafkaProducer

    job_id = f"bench-lora-{uuid.uuid4().hex[:10]}"
    request = JobRequested(job_id=job_id, training_type="LOCAL_LORA",
                           datasets=(DatasetRef(uri=uri),), parameters=params)  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    await producer.start()
    async with JobEnds(settings.postgres_dsn) as ends:
        try:
            begin, wall_begin = time.perf_counter(), time.time()
            await producer.send_and_wait(JOB_REQUESTED, request.to_bytes(), key=job_id.encode())
        finally:
            await producer.stop()
        row = await ends.ended(job_id, timeout)
        seconds = time.perf_counter() - begin
        if row["state"] != "SUCCEEDED":
            raise RuntimeError(f"bench job {job_id} ended {row['state']}: {row['error']}")
        summary = row["result"]["summary"]
        parts = await breakdown(ends.query, job_id, wall_begin, seconds, summary)
    return JobRun(float(summary["tokens"]), seconds, parts)


async def breakdown(
    conn: Any, job_id: str, begin: float, seconds: float, summary: dict[str, Any]
) -> dict[str, float]:
    """Seconds from the request to each milestone the lora-service reported, and what is left."""
    cur = await conn.execute(
        "SELECT state, stage, percent, extract(epoch FROM occurred_at) AS at FROM job_progress"
        " WHERE job_id = %s ORDER BY seq",
        (job_id,),
    )
    events = await cur.fetchall()

    def first(match: Any) -> float:
        return next((float(e["at"]) - begin for e in events if match(e)), float("nan"))

    claimed = first(lambda e: e["state"] == "VALIDATING")
    training = first(lambda e: e["stage"] == "training")
    storing = first(lambda e: e["stage"] == "storing")
    done = first(lambda e: e["state"] == "SUCCEEDED")
    loop = float(summary["tokens"]) / float(summary["tokens_per_s"])
    return {
        "request_to_claim": claimed,
        "load_tokenise_prepare": training - claimed,
        "training_loop": loop,
        "training_other": storing - training - loop,  # thread hop, the final progress report
        "storing_uploading": done - storing,
        "succeeded_to_seen": seconds - done,  # the tracker's projection, the bench's poll
    }


def rounded(parts: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in parts.items()}
