"""Peak memory, time and cost of each training type, from model size, rank, sequence and batch.

The constants are calibrated by measurement (`make bench` runs the estimator against real runs on
this machine and prints the error); the formulas follow the arithmetic of the work itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from lorag_hybrid.recommend.models import ModelSpec
from lorag_hybrid.recommend.resources import Resources

# Calibrated with `make bench` (bench/hybrid.py: LoRA runs of the tiny LLaMA on 2 CPU cores,
# peak RSS and wall time against these formulas); GPU figures are assumptions, not measured here.
RUNTIME_OVERHEAD = 840 * 2**20  # python + torch + transformers + peft resident before any tensor
ACTIVATION_BYTES = 140  # per token, hidden unit and layer kept for the backward pass (fp32)
LOGIT_BYTES = 16  # per token and vocabulary entry: logits, softmax and their gradients
CPU_TRAIN_FLOPS = 7.1e10  # effective FLOP/s of training on 2 idle cores
CPU_STEP_OVERHEAD_S = 0.01  # fixed cost of a step (kernel launches, optimizer) on CPU
GPU_TRAIN_FLOPS = 2.0e14  # ~30% of a modern data-centre GPU's bf16 peak
EMBED_TOKENS_PER_S_PER_CORE = 3_650  # all-MiniLM-L6-v2 on CPU (measured: ~7,300 tokens/s, 2 cores)
EMBEDDING_MODEL_BYTES = 90 * 2**20
CHROMA_BYTES_PER_CHUNK = 384 * 4 * 3  # vector, index and metadata
CHUNK_TOKENS = 256


@dataclass(frozen=True)
class Prices:
    cpu_hour: float = 0.05  # USD per hour of this machine
    gpu_hour: float = 2.50
    llm_input_per_mtok: float = 0.15  # external LLM, USD per million prompt tokens


@dataclass(frozen=True)
class Estimate:
    peak_memory_bytes: int
    seconds: float
    cost_usd: float
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "peak_memory_gb": round(self.peak_memory_bytes / 2**30, 2),
            "seconds": round(self.seconds, 1),
            "cost_usd": round(self.cost_usd, 4),
            "note": self.note,
        }


def lora_params(model: ModelSpec, r: int, targets: int = 2) -> int:
    """Trainable parameters of LoRA on `targets` square projections per layer."""
    return model.layers * targets * r * 2 * model.hidden


def train_memory(model: ModelSpec, trainable: int, batch: int, seq: int, gpu: bool) -> int:
    """Weights + trainable state (weight, grad, two Adam moments in fp32) + activations + logits."""
    weights = model.params * (2 if gpu else 4)
    state = trainable * 16
    activations = batch * seq * model.hidden * model.layers * ACTIVATION_BYTES
    logits = batch * seq * model.vocab * LOGIT_BYTES
    return RUNTIME_OVERHEAD + weights + state + activations + logits


def train_seconds(
    model: ModelSpec, tokens: int, full: bool, resources: Resources, batch: int, seq: int
) -> float:
    """6·N FLOPs a token for full training, about 4·N for LoRA (no weight gradients), plus a
    fixed cost per step on CPU."""
    flops = (6 if full else 4) * model.params * tokens
    if resources.has_gpu:
        return flops / GPU_TRAIN_FLOPS
    steps = tokens / (batch * seq)
    return flops / (CPU_TRAIN_FLOPS * resources.cpu_cores / 2) + steps * CPU_STEP_OVERHEAD_S


def training(
    model: ModelSpec,
    tokens: int,
    *,
    r: int,
    batch: int,
    seq: int,
    full: bool,
    resources: Resources,
    prices: Prices,
) -> Estimate:
    trainable = model.params if full else lora_params(model, r)
    seconds = train_seconds(model, tokens, full, resources, batch, seq)
    hourly = prices.gpu_hour if resources.has_gpu else prices.cpu_hour
    return Estimate(
        train_memory(model, trainable, batch, seq, resources.has_gpu),
        seconds,
        seconds / 3600 * hourly,
    )


def ingestion(tokens: int, resources: Resources, prices: Prices, *, top_k: int = 5) -> Estimate:
    """Embedding the corpus once; the external LLM's cost is per question, so it is a note."""
    speed = EMBED_TOKENS_PER_S_PER_CORE * resources.cpu_cores * (20 if resources.has_gpu else 1)
    seconds = tokens / speed
    chunks = max(1, tokens // CHUNK_TOKENS)
    memory = RUNTIME_OVERHEAD + EMBEDDING_MODEL_BYTES + chunks * CHROMA_BYTES_PER_CHUNK
    per_1k = 1000 * (top_k * CHUNK_TOKENS + 100) / 1e6 * prices.llm_input_per_mtok
    return Estimate(
        memory,
        seconds,
        seconds / 3600 * prices.cpu_hour,
        note=f"external LLM ~${per_1k:.2f} per 1,000 questions",
    )
