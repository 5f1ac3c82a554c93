"""One LoRA training run in a fresh process, for the estimator benchmark: prints a JSON line with
the measured peak RSS and seconds, so the figures are the run's own and not the bench's."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def main(folder: str, batch: int, seq: int, steps: int, r: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(folder),
        LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"]),
    )
    vocab = model.config.vocab_size
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.randint(3, vocab, (batch, seq))
    started = time.perf_counter()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_bytes": peak, "seconds": seconds, "tokens": batch * seq * steps}))


if __name__ == "__main__":
    folder, batch, seq, steps, r = sys.argv[1], *map(int, sys.argv[2:6])
    main(str(Path(folder)), batch, seq, steps, r)
