"""One LoRA training run in a fresh process, for the estimator benchmark and its calibration.

`python -m bench._train_probe FOLDER BATCH SEQ STEPS RANK THREADS` prints a JSON line with the
run's own peak RSS (VmHWM: ru_maxrss would carry the parent's peak across exec), its wall
seconds and its CPU seconds (all threads), which tell a loaded machine from a wrong estimate.
"""

from __future__ import annotations

import json
import sys
import time


def main(folder: str, batch: int, seq: int, steps: int, r: int, threads: int) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from bench.peak_rss import peak_bytes

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(folder),
        LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj"]),
    )
    vocab = model.config.vocab_size
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.randint(3, vocab, (batch, seq))
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"peak_bytes": peak_bytes(), "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "tokens": batch * seq * steps}))  # fmt: skip


if __name__ == "__main__":
    folder, batch, seq, steps, r, threads = sys.argv[1], *map(int, sys.argv[2:7])
    main(folder, batch, seq, steps, r, threads)
