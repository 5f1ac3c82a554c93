"""Build the small LLaMA-architecture model lorag uses when no hub can be reached.

`python -m lorag_lora.tiny DIR` writes a byte-level BPE tokenizer trained on a bundled text and a
randomly initialised `LlamaForCausalLM` (about 7 M parameters) into DIR. The result depends only
on the seed, so every machine builds the same model.
"""

from __future__ import annotations

import os
import sys
import tempfile
from importlib import resources
from pathlib import Path

SPECIALS = ("<s>", "</s>", "<pad>")
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
TINY_NAME = "tiny-llama"


def bundled_text() -> str:
    """The small text the tokenizer is trained on."""
    return resources.files("lorag_lora.data").joinpath("tiny_corpus.txt").read_text()


def build_tiny_llama(folder: Path, *, seed: int = 0, vocab_size: int = 2048) -> Path:
    """Write tokenizer and model to `folder` (atomically: a half-built folder is never seen)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(
        bundled_text().split("\n\n"), vocab_size=vocab_size, min_frequency=1,
        special_tokens=list(SPECIALS), show_progress=False,
    )  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw._tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(staging)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=128, intermediate_size=384,
        num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
        max_position_embeddings=512, rms_norm_eps=1e-5, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(staging)
    if folder.exists():  # another process finished first; keep its copy
        return folder
    os.replace(staging, folder)
    return folder


def ensure_tiny_llama(models_dir: Path) -> Path:
    """The tiny model's folder under `models_dir`, built on first use."""
    folder = Path(models_dir) / TINY_NAME
    if not (folder / "config.json").exists():
        build_tiny_llama(folder)
    return folder


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m lorag_lora.tiny DIR", file=sys.stderr)
        return 2
    print(build_tiny_llama(Path(argv[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
