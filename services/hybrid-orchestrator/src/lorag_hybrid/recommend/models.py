"""How big a base model is: from its config.json when we have the folder, else from a short list."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    name: str
    params: int
    hidden: int
    layers: int
    vocab: int


# Well-known hub models people point `base_model` at; params as published by their authors.
KNOWN = {
    "HuggingFaceTB/SmolLM2-135M": ModelSpec(
        "HuggingFaceTB/SmolLM2-135M", 135_000_000, 576, 30, 49152
    ),
    "Qwen/Qwen2.5-0.5B": ModelSpec("Qwen/Qwen2.5-0.5B", 494_000_000, 896, 24, 151936),
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": ModelSpec(
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0", 1_100_000_000, 2048, 22, 32000
    ),
    "meta-llama/Llama-3.2-1B": ModelSpec(
        "meta-llama/Llama-3.2-1B", 1_236_000_000, 2048, 16, 128256
    ),
    "mistralai/Mistral-7B-v0.1": ModelSpec(
        "mistralai/Mistral-7B-v0.1", 7_240_000_000, 4096, 32, 32000
    ),
    "meta-llama/Llama-3.1-8B": ModelSpec(
        "meta-llama/Llama-3.1-8B", 8_030_000_000, 4096, 32, 128256
    ),
}


def from_config(name: str, config: dict[str, int]) -> ModelSpec:
    """Parameter count of a decoder-only transformer from its config (embeddings included)."""
    hidden, layers, vocab = config["hidden_size"], config["num_hidden_layers"], config["vocab_size"]
    inter = config.get("intermediate_size", 4 * hidden)
    per_layer = 4 * hidden * hidden + 3 * hidden * inter  # attention + gated MLP
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings") else 2)
    return ModelSpec(name, layers * per_layer + embeddings, hidden, layers, vocab)


# The model lorag builds locally when no hub can be reached (lorag_lora.tiny): ~1.0 M parameters.
TINY = from_config(
    "tiny-llama",
    {"hidden_size": 128, "num_hidden_layers": 4, "vocab_size": 718, "intermediate_size": 384},
)


def resolve(name: str | None) -> ModelSpec:
    """The spec of a folder (its config.json), a known hub id, or the local tiny model."""
    if not name:
        return TINY
    config = Path(name) / "config.json"
    if config.is_file():
        return from_config(name, json.loads(config.read_text()))
    if name in KNOWN:
        return KNOWN[name]
    raise ValueError(
        f"unknown base model {name!r}: give a folder with config.json or one of {', '.join(KNOWN)}"
    )
