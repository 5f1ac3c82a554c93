"""How long a LoRA job's tokenising takes, in one call against text by text, in process.

`python -m bench.profile_lora_tokenise`: `bench lora`'s job dataset (its plain-text paragraphs)
on the tiny base's tokenizer, `encode_all` (every text in one call) against the tokenizer called
once per text, in eight alternating rounds; both must give the same ids. A profile, not a judged
figure (`bench lora` judges the job).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench import lora, lora_job
from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from lorag_lora.domain.batching import encode_all
from lorag_lora.domain.datasets import parse_file

ROUNDS = 8


def main() -> None:
    base = ModelManager(LoraSettings(models_dir=Path(tempfile.mkdtemp()) / "models")).load(None)
    examples = parse_file(lora_job.FILE, lora_job.corpus(lora.JOB_STEPS * lora.BATCH * 3))
    enc, tok = base.encoder(), base.tokenizer
    texts = [e.text or "" for e in examples]
    together, apart = [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        rows, _ = encode_all(examples, enc, 10**6, "truncate")
        together.append(time.perf_counter() - started)
        started = time.perf_counter()
        one_by_one = [tok.encode(t, add_special_tokens=False) for t in texts]
        apart.append(time.perf_counter() - started)
        assert [r.input_ids[1 if enc.bos_id is not None else 0 : -1] for r in rows] == one_by_one
    for label, runs in (("encode_all, one call", together), ("tok.encode per text", apart)):
        print(f"{label:<22} median {statistics.median(runs):.3f} s, "
              f"rounds {' / '.join(f'{s:.3f}' for s in runs)}  ({len(texts)} texts)")  # fmt: skip


if __name__ == "__main__":
    main()
