"""Serving on one shared base model: the registry's adapters (LRU), fine-tuned models (LRU by
memory) and the continuous-batching scheduler that decodes them all.

The base model is the one object in memory; adapters are loaded into it (PEFT) and chosen per
row, so nothing of the base is copied per request or per engine. An adapter is fetched from
object storage on first use (its sha256 checked against the registry). A fine-tuned model is a
whole model, fetched and loaded on first use and dropped, least recently used first, when the
loaded ones exceed their memory budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from peft import PeftModel
from peft.tuners.lora import LoraLayer
from peft.utils.other import AuxiliaryTrainingWrapper
from psycopg_pool import AsyncConnectionPool
from transformers import AutoModelForCausalLM, AutoTokenizer

from lorag_core.storage import ObjectStore
from lorag_lora.adapters import artifacts, registry
from lorag_lora.adapters.artifacts import AdapterCorrupted
from lorag_lora.adapters.models import BaseModel
from lorag_lora.domain.batching import fallback_prompt
from lorag_lora.domain.registry import WEIGHTS_FILE, parse_ref
from lorag_lora.serving import metrics as serving_metrics
from lorag_lora.serving.batched_lora import BatchedLora
from lorag_lora.serving.handoff import Generation, Inbox
from lorag_lora.serving.sampling import Sampling
from lorag_lora.serving.scheduler import Scheduler, Target

BASE_ROW = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch
STREAM_INTERVAL_S = 0.02  # the default of LoraSettings.stream_interval_ms (handoff.py)


class AdapterBaseMismatch(RuntimeError):
    """The adapter was trained on another base model than the one served."""


class ContextTooLong(ValueError):
    """The prompt leaves no room for an answer within the model's positions."""


@dataclass(frozen=True)
class Choice:
    """What a request's `model` resolved to: the base, an adapter or a fine-tuned model."""

    kind: str  # base | adapter | model
    label: str
    key: str | None = None  # adapter name inside PEFT, or the fine-tuned model's cache key
    folder: Path | None = None
    sha256: str | None = None


@dataclass
class Served:
    """A loaded model, its tokenizer and what the scheduler needs to run it."""

    runner: Any
    tokenizer: Any
    eos_ids: frozenset[int]
    max_positions: int
    size_bytes: int = 0


class BaseRunner:
    """The base model's forward pass; rows name their adapter once any adapter is loaded.

    A mixed-adapter batch adds each row's LoRA delta in one gather-matmul per layer
    (`BatchedLora`), with the adapter layers switched off; adapters it cannot batch exactly
    (DoRA and other variants) go through PEFT's per-adapter sub-batches (`adapter_names`)."""

    def __init__(self, model: Any, *, batched_lora: bool = True) -> None:
        self.model = model
        self.peft: PeftModel | None = None
        self.batched_lora = batched_lora
        self.enabled: bool | None = None  # the adapter layers' switch; None: not known
        self._batched: BatchedLora | None = None  # the loaded adapters, stacked per layer
        self._hooked: list[str] | None = None  # the per-row adapters the hooks pass on
        self._hooks: list[Any] = []

    def __call__(self, adapters: list[str | None], **inputs: Any) -> Any:
        if self.peft is None:
            return self.model(**inputs)
        first = adapters[0]
        inner: Any = self.peft.base_model.model  # PEFT's wrapped model
        if any(a != first for a in adapters):
            batched = self._stacked()
            if batched is not None:
                self._switch(on=False)  # PEFT runs the base layers, the hooks add the deltas
                self._hook([a or BASE_ROW for a in adapters], batched)
                return inner(**inputs)
            self._switch(on=True)
            self._hook([a or BASE_ROW for a in adapters])
            return inner(**inputs)
        # One adapter (or none) for every row: skip PEFT's per-row split of each layer's input.
        self._hook(None)
        self._switch(on=first is not None)
        if first is not None and self.peft.active_adapter != first:
            self.peft.set_adapter(first)
        return self.peft(**inputs)

    def _stacked(self) -> BatchedLora | None:
        """The loaded adapters stacked per layer (made again after a load or a drop); None
        when batching is off or an adapter is not plain LoRA."""
        if not self.batched_lora or self.peft is None:
            return None
        if self._batched is None:
            self._batched = BatchedLora(self.peft)
        return self._batched if self._batched.usable else None

    def _hook(self, names: list[str] | None, batched: BatchedLora | None = None) -> None:
        """Give every LoRA layer the rows' adapters, only when they change: through the
        batched deltas, or as PEFT's `forward(adapter_names=...)` does (PEFT walks every module
        to add its hooks and again to remove them at each call, a sixth of a mixed step)."""
        if names == self._hooked:
            return
        for handle in self._hooks:
            handle.remove()
        if self._batched is not None:
            self._batched.unhook()
        self._hooks, self._hooked = [], names
        if names is None or self.peft is None:
            return
        if batched is not None:
            batched.hook([None if n == BASE_ROW else n for n in names])
            return
        inject = partial(_pass_adapter_names, adapter_names=names)
        for layer in self.peft.modules():
            if isinstance(layer, (LoraLayer, AuxiliaryTrainingWrapper)):  # as PEFT hooks them
                self._hooks.append(layer.register_forward_pre_hook(inject, with_kwargs=True))

    def _switch(self, on: bool) -> None:
        """Turn the adapter layers on or off only when that changes: PEFT walks every module to
        do it (its `disable_adapter()` context did that twice a step, and checked the model's
        status too: a base row ran at half the speed of plain `generate`)."""
        assert self.peft is not None
        if self.enabled is not on:
            layers: Any = self.peft.base_model  # a LoraModel (torch types it as a Module)
            layers.enable_adapter_layers() if on else layers.disable_adapter_layers()
            self.enabled = on

    def changed(self) -> None:
        """An adapter was loaded or dropped: its layers' switch is not known, and the hooks
        and the stacked weights are made again for the adapters there are now."""
        self.enabled = None
        self._hook(None)
        self._batched = None


def _pass_adapter_names(module: Any, args: Any, kwargs: dict[str, Any],
                        adapter_names: list[str]) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    kwargs["adapter_names"] = adapter_names
    return args, kwargs


class WholeModelRunner:
    """A fine-tuned model's forward pass (it has no adapters)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, adapters: list[str | None], **inputs: Any) -> Any:
        return self.model(**inputs)


def served(runner: Any, model: Any, tokenizer: Any) -> Served:
    eos = model.generation_config.eos_token_id or tokenizer.eos_token_id
    eos_ids = frozenset(eos if isinstance(eos, list) else [eos])
    limit = int(getattr(model.config, "max_position_embeddings", 0) or 1 << 30)
    size = sum(p.numel() * p.element_size() for p in model.parameters())
    return Served(runner, tokenizer, eos_ids, limit, size)


class Engine:
    """Resolves model names, keeps adapters and fine-tuned models loaded, and runs requests."""

    def __init__(self, base: BaseModel, objects: ObjectStore, pool: AsyncConnectionPool,
                 cache_dir: Path, cache_size: int, *, max_batch: int = 16, max_queue: int = 64,
                 model_cache_bytes: int = 2 * 2**30,
                 stream_interval_s: float = STREAM_INTERVAL_S,
                 decode_threads: int | None = None) -> None:  # fmt: skip
        self.base, self.objects, self.pool = base, objects, pool
        self.cache_dir, self.cache_size = cache_dir, cache_size
        self.runner = BaseRunner(base.model)  # the one copy of the base weights
        self.served_base = served(self.runner, base.model, base.tokenizer)
        self.adapters: OrderedDict[str, str] = OrderedDict()  # key -> label, LRU order
        self.models: OrderedDict[str, Served] = OrderedDict()  # fine-tuned, LRU order
        self.model_cache_bytes = model_cache_bytes
        self.in_use: dict[str, int] = {}  # adapter or model key -> requests running on it
        self._use_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.scheduler = Scheduler(
            max_batch, max_queue, base.device, stream_interval_s, decode_threads
        )

    def close(self) -> None:
        self.scheduler.stop()

    async def choose(self, model_name: str, owner: str | None = None) -> Choice:
        """Resolve `base`, NAME, NAME:VERSION or NAME@ALIAS for `owner` (None: anyone's) and
        fetch its files if needed; another owner's model is not found, like a missing one."""
        ref = parse_ref(model_name)
        if ref is None:
            return Choice("base", "base")
        async with self.pool.connection() as conn:
            row = await registry.find(conn, ref)
        if owner is not None and row["owner"] != owner:
            raise registry.AdapterNotFound(
                f"no adapter {ref}; `lorag adapters ls` lists the adapters"
            )
        label = f"{row['name']}:{row['version']}"
        folder = self.cache_dir / row["name"] / f"v{row['version']}-{row['sha256'][:12]}"
        if row.get("kind", "adapter") == "model":
            choice = Choice("model", label, label, folder, row["sha256"])
            if label not in self.models:
                if not (folder / "config.json").exists():
                    await asyncio.to_thread(
                        artifacts.fetch_model, self.objects, row["uri"], row["sha256"], folder
                    )
                await asyncio.to_thread(self._load_model, choice)
            return choice
        if row["base_model_revision"] != self.base.revision:
            raise AdapterBaseMismatch(
                f"adapter {label} was trained on {row['base_model']} "
                f"({row['base_model_revision'][:19]}…) but this server runs {self.base.name} "
                f"({self.base.revision[:19]}…); serve it with its own base model"
            )
        key = re.sub(r"[^A-Za-z0-9_]", "_", f"a_{row['name']}_v{row['version']}")
        if key not in self.adapters and not (folder / WEIGHTS_FILE).exists():
            await asyncio.to_thread(
                artifacts.fetch_adapter, self.objects, row["uri"], row["sha256"], folder
            )
        return Choice("adapter", label, key, folder, row["sha256"])

    def served_of(self, choice: Choice) -> Served:
        if choice.kind == "model":
            assert choice.key is not None
            return self.models[choice.key]
        return self.served_base

    def tokenizer_of(self, choice: Choice) -> Any:
        return self.served_of(choice).tokenizer

    def chat_ids(self, choice: Choice, messages: list[dict[str, str]]) -> list[int]:
        """The prompt of a conversation, rendered with the tokenizer's chat template."""
        tok = self.tokenizer_of(choice)
        if tok.chat_template:
            text = str(tok.apply_chat_template(messages, add_generation_prompt=True,
                                               tokenize=False))  # fmt: skip
        else:
            text = fallback_prompt(messages)
        return self.text_ids(choice, text)

    def text_ids(self, choice: Choice, text: str) -> list[int]:
        """A raw prompt's ids, after the BOS token if the model has one (templates that already
        start with it are not doubled)."""
        tok = self.tokenizer_of(choice)
        ids = tok.encode(text, add_special_tokens=False)
        bos = tok.bos_token_id
        return ids if bos is None or (ids and ids[0] == bos) else [bos, *ids]

    def submit(self, choice: Choice, prompt: list[int], sampling: Sampling,
               inbox: Inbox | None = None, index: int = 0) -> Generation:  # fmt: skip
        """Queue a request on the scheduler (QueueFull when there is no room); its events
        arrive in `inbox` under `index`, or in an inbox of its own."""
        model = self.served_of(choice)
        room = model.max_positions - len(prompt)
        if room < 1:
            raise ContextTooLong(
                f"the prompt has {len(prompt)} tokens and the model reads at most "
                f"{model.max_positions}; shorten the messages"
            )
        sampling = Sampling(min(sampling.max_tokens, room), sampling.temperature,
                            sampling.top_p, sampling.seed, sampling.stop)  # fmt: skip
        key = choice.key
        self._use(key, +1)
        target = Target(
            model.runner, model.tokenizer, model.eos_ids, model.max_positions,
            adapter=key if choice.kind == "adapter" else None,
            prepare=(lambda: self._activate(choice)) if choice.kind == "adapter" else None,
            release=lambda: self._use(key, -1),
        )  # fmt: skip
        try:
            return self.scheduler.submit(target, prompt, sampling, inbox, index)
        except BaseException:
            self._use(key, -1)
            raise

    def _use(self, key: str | None, delta: int) -> None:
        if key is None:
            return
        with self._use_lock:
            self.in_use[key] = self.in_use.get(key, 0) + delta
            if self.in_use[key] <= 0:
                del self.in_use[key]

    def _activate(self, choice: Choice) -> None:
        """Load the adapter into the base model if it is not (runs in the decode thread)."""
        key = choice.key
        assert key is not None
        serving_metrics.adapter_lookup(hit=key in self.adapters)
        if key not in self.adapters:
            assert choice.folder is not None
            digest = hashlib.sha256((choice.folder / WEIGHTS_FILE).read_bytes()).hexdigest()
            if digest != choice.sha256:  # the local copy rotted or was tampered with
                (choice.folder / WEIGHTS_FILE).unlink()
                raise AdapterCorrupted(f"local copy of {choice.label} is corrupted; retry")
            runner = self.runner
            if runner.peft is None:
                runner.peft = PeftModel.from_pretrained(runner.model, choice.folder, key)
            else:
                runner.peft.load_adapter(choice.folder, adapter_name=key)
            runner.peft.eval()
            runner.changed()
            self.adapters[key] = choice.label
            self._evict_adapters()
        self.adapters.move_to_end(key)

    def _evict_adapters(self) -> None:
        """Drop least recently used adapters beyond the cache size, never one in use."""
        assert self.runner.peft is not None
        for old in list(self.adapters):
            if len(self.adapters) <= self.cache_size:
                return
            if old not in self.in_use:
                self.runner.peft.delete_adapter(old)
                self.runner.changed()
                del self.adapters[old]

    def _load_model(self, choice: Choice) -> None:
        """Load a fine-tuned model (blocking), then drop old ones beyond the memory budget."""
        assert choice.key is not None and choice.folder is not None
        with self._load_lock:
            if choice.key in self.models:
                return
            digest = artifacts.weights_digest(choice.folder)
            if digest != choice.sha256:
                artifacts.forget_model(choice.folder)
                raise AdapterCorrupted(f"local copy of {choice.label} is corrupted; retry")
            tokenizer = AutoTokenizer.from_pretrained(choice.folder)
            model = AutoModelForCausalLM.from_pretrained(choice.folder, dtype=self.base.dtype)
            model.to(self.base.device).eval()  # type: ignore[arg-type]
            self.models[choice.key] = served(WholeModelRunner(model), model, tokenizer)
            total = sum(m.size_bytes for m in self.models.values())
            for old in list(self.models):
                if total <= self.model_cache_bytes or len(self.models) == 1:
                    break
                if old != choice.key and old not in self.in_use:
                    total -= self.models.pop(old).size_bytes  # freed when its last row ends

    def touch(self, choice: Choice) -> None:
        """Mark a fine-tuned model recently used."""
        key = choice.key
        if choice.kind == "model" and key is not None and key in self.models:
            self.models.move_to_end(key)

    def loaded_labels(self) -> dict[str, str]:
        """What is loaded: adapter and model labels by kind (for diagnostics and the bench)."""
        return {**{v: "adapter" for v in self.adapters.values()},
                **{k: "model" for k in self.models}}  # fmt: skip
