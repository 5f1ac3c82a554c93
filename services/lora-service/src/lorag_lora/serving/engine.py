"""Generation on one shared base model with LoRA adapters hot-swapped per request (LRU cache).

The base model is loaded once. An adapter is fetched from object storage on first use (its
sha256 checked against the registry), loaded next to the others, and chosen per request;
the least recently used one is dropped when the cache is full. Generation holds a lock, since
the active adapter is state of the shared model.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from psycopg_pool import AsyncConnectionPool
from transformers import TextIteratorStreamer

from lorag_core.storage import ObjectStore
from lorag_lora.adapters import artifacts, registry
from lorag_lora.adapters.artifacts import AdapterCorrupted
from lorag_lora.adapters.models import BaseModel
from lorag_lora.domain.registry import WEIGHTS_FILE, parse_ref
from lorag_lora.serving import metrics as serving_metrics


class AdapterBaseMismatch(RuntimeError):
    """The adapter was trained on another base model than the one served."""


@dataclass(frozen=True)
class Choice:
    """The adapter a request resolved to (None: the bare base model)."""

    key: str | None
    label: str
    folder: Path | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


class Engine:
    """Answers chat requests with the base model or one of the registry's adapters."""

    def __init__(self, base: BaseModel, objects: ObjectStore, pool: AsyncConnectionPool,
                 cache_dir: Path, cache_size: int) -> None:  # fmt: skip
        self.base, self.objects, self.pool = base, objects, pool
        self.model = base.fresh_copy()  # training jobs copy the pristine cached weights
        self.cache_dir, self.cache_size = cache_dir, cache_size
        self.loaded: OrderedDict[str, str] = OrderedDict()  # key -> label, LRU order
        self.lock = threading.Lock()
        self.encoder = base.encoder()
        self.peft: PeftModel | None = None  # wraps the model once the first adapter is loaded

    async def choose(self, model_name: str) -> Choice:
        """Resolve `base`, NAME, NAME:VERSION or NAME@ALIAS; fetch the adapter files if needed."""
        ref = parse_ref(model_name)
        if ref is None:
            return Choice(None, "base")
        async with self.pool.connection() as conn:
            row = await registry.find(conn, ref)
        label = f"{row['name']}:{row['version']}"
        if row["base_model_revision"] != self.base.revision:
            raise AdapterBaseMismatch(
                f"adapter {label} was trained on {row['base_model']} "
                f"({row['base_model_revision'][:19]}…) but this server runs {self.base.name} "
                f"({self.base.revision[:19]}…); serve it with its own base model"
            )
        key = re.sub(r"[^A-Za-z0-9_]", "_", f"a_{row['name']}_v{row['version']}")
        folder = self.cache_dir / row["name"] / f"v{row['version']}-{row['sha256'][:12]}"
        if key not in self.loaded and not (folder / WEIGHTS_FILE).exists():
            await asyncio.to_thread(
                artifacts.fetch_adapter, self.objects, row["uri"], row["sha256"], folder
            )
        return Choice(key, label, folder, row["sha256"])

    def _activate(self, choice: Choice) -> contextlib.AbstractContextManager[Any]:
        """Make `choice` the active adapter (the caller holds the lock); enter what it returns."""
        if choice.key is None:
            return self.peft.disable_adapter() if self.peft else contextlib.nullcontext()
        serving_metrics.adapter_lookup(hit=choice.key in self.loaded)
        if choice.key not in self.loaded:
            assert choice.folder is not None
            digest = hashlib.sha256((choice.folder / WEIGHTS_FILE).read_bytes()).hexdigest()
            if digest != choice.sha256:  # the local copy rotted or was tampered with
                (choice.folder / WEIGHTS_FILE).unlink()
                raise AdapterCorrupted(f"local copy of {choice.label} is corrupted; retry")
            if self.peft is None:
                self.peft = PeftModel.from_pretrained(self.model, choice.folder, choice.key)
            else:
                self.peft.load_adapter(choice.folder, adapter_name=choice.key)
            self.peft.eval()
            self.loaded[choice.key] = choice.label
            while len(self.loaded) > self.cache_size:  # the new one is never the one dropped
                self.peft.delete_adapter(self.loaded.popitem(last=False)[0])
        assert self.peft is not None
        self.loaded.move_to_end(choice.key)
        self.peft.set_adapter(choice.key)
        return contextlib.nullcontext()

    @property
    def generator(self) -> Any:
        return self.peft if self.peft is not None else self.model

    def prompt_ids(self, messages: list[dict[str, str]]) -> torch.Tensor:
        enc = self.encoder
        head = [enc.bos_id] if enc.bos_id is not None else []
        turns = [(m["role"], m["content"]) for m in messages]
        return torch.tensor([head + enc.encode(enc.render_prompt(turns))], device=self.base.device)

    def _generate_kwargs(self, ids: torch.Tensor, max_new_tokens: int, temperature: float,
                         top_p: float) -> dict[str, Any]:  # fmt: skip
        sample = temperature > 0
        return {
            "input_ids": ids, "attention_mask": torch.ones_like(ids),
            "max_new_tokens": max_new_tokens, "do_sample": sample,
            "temperature": temperature if sample else None, "top_p": top_p if sample else None,
            "top_k": None, "pad_token_id": self.encoder.pad_id, "eos_token_id": self.encoder.eos_id,
        }  # fmt: skip

    def complete(self, choice: Choice, messages: list[dict[str, str]], max_new_tokens: int,
                 temperature: float = 0.0, top_p: float = 1.0) -> Completion:  # fmt: skip
        """Generate a whole answer (blocking; run it in a thread)."""
        ids = self.prompt_ids(messages)
        kwargs = self._generate_kwargs(ids, max_new_tokens, temperature, top_p)
        with self.lock, torch.inference_mode(), self._activate(choice):
            out = self.generator.generate(**kwargs)
        new = out[0, ids.shape[1] :].tolist()
        finish = "stop" if new and new[-1] == self.encoder.eos_id else "length"
        text = self.base.tokenizer.decode(new, skip_special_tokens=True)
        return Completion(text, ids.shape[1], len(new), finish)

    def stream(self, choice: Choice, messages: list[dict[str, str]], max_new_tokens: int,
               temperature: float = 0.0, top_p: float = 1.0) -> Iterator[str]:  # fmt: skip
        """Yield text pieces as they are generated (a blocking iterator; work runs in a thread)."""
        ids = self.prompt_ids(messages)
        kwargs = self._generate_kwargs(ids, max_new_tokens, temperature, top_p)
        streamer = TextIteratorStreamer(self.base.tokenizer, skip_prompt=True,
                                        skip_special_tokens=True, timeout=120)  # fmt: skip
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with self.lock, torch.inference_mode(), self._activate(choice):
                    self.generator.generate(streamer=streamer, **kwargs)
            except BaseException as exc:
                failure.append(exc)
                streamer.end()

        threading.Thread(target=work, name="lorag-generate", daemon=True).start()
        yield from (piece for piece in streamer if piece)
        if failure:
            raise failure[0]
