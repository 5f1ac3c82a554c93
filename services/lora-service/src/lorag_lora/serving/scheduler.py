"""Continuous batching: one thread decodes every running request together, step by step.

Requests join between decode steps (after a prefill of their own prompt) and leave as soon as
they finish or their client goes away. Rows on the base model are one batch whatever their
adapter: each row gets its own adapter's delta (none for a base row) in the same forward pass,
one gather-matmul per LoRA layer (`batched_lora.py`; PEFT's `adapter_names=` for variants it
cannot batch). A fine-tuned model is a whole other model, so its rows form a batch of their own.

The KV cache is one tensor per layer for a batch, left-padded: each row keeps its own length,
an attention mask hides the padding and each row gets its own positions, so a row decodes the
same tokens in a batch as alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from lorag_lora.serving.handoff import Delta, Done, Event, Failed, Generation, Inbox
from lorag_lora.serving.sampling import Sampling, TextTracker, generator_for, sample

__all__ = ["Delta", "Done", "Failed", "Generation", "Inbox", "QueueFull", "Scheduler", "Target"]

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Every batch slot is taken and the waiting line is full."""


class Runner(Protocol):
    """A model's forward pass given each row's adapter (None: none). One object per model: the
    batch a row joins is its runner's."""

    def __call__(self, adapters: list[str | None], **inputs: Any) -> Any: ...


@dataclass(frozen=True)
class Target:
    """What a request runs on: a model (the base or a fine-tuned one), maybe with an adapter."""

    model: Runner
    tokenizer: Any
    eos_ids: frozenset[int]
    max_positions: int
    adapter: str | None = None  # PEFT adapter name on the base model
    prepare: Callable[[], Any] | None = None  # run in the decode thread before the prefill
    release: Callable[[], None] | None = None  # when the request is over


@dataclass(eq=False)
class Row:
    gen: Generation
    target: Target
    prompt: list[int]
    sampling: Sampling
    text: TextTracker
    rng: torch.Generator | None
    generated: int = 0
    cached: int = 0  # tokens in this row's KV cache
    pending: int = -1  # the last sampled token, fed in at the next step


@dataclass(eq=False)
class Lane:
    """The running rows of one model and their batched, left-padded KV cache."""

    model: Runner
    rows: list[Row] = field(default_factory=list)
    cache: DynamicCache | None = None

    @property
    def width(self) -> int:
        return 0 if self.cache is None else self.cache.get_seq_length()

    def join(self, rows: list[Row], cache: DynamicCache) -> None:
        """Add prefilled rows (their cache, one row each): pad the shorter of it and the
        batch's on the left."""
        if self.cache is None:
            self.cache, self.rows = cache, list(rows)
            return
        extra = cache.get_seq_length() - self.width
        for mine, theirs in zip(_layers(self.cache), _layers(cache), strict=True):
            a_k, a_v, b_k, b_v = mine.keys, mine.values, theirs.keys, theirs.values
            if extra > 0:
                a_k, a_v = F.pad(a_k, (0, 0, extra, 0)), F.pad(a_v, (0, 0, extra, 0))
            elif extra < 0:
                b_k, b_v = F.pad(b_k, (0, 0, -extra, 0)), F.pad(b_v, (0, 0, -extra, 0))
            mine.keys, mine.values = torch.cat([a_k, b_k]), torch.cat([a_v, b_v])
        self.rows.extend(rows)

    def keep(self, keep: list[int]) -> None:
        """Drop the other rows, and the padding columns no remaining row needs."""
        if not keep:
            self.rows, self.cache = [], None
            return
        self.rows = [self.rows[i] for i in keep]
        assert self.cache is not None
        cut = self.width - max(r.cached for r in self.rows)
        layers = _layers(self.cache)
        index = torch.tensor(keep, device=layers[0].keys.device)
        for layer in layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, cut:]
            layer.values = layer.values.index_select(0, index)[:, :, cut:]

    def step(self) -> torch.Tensor:
        """One decode step for every row; the logits of each row's next token."""
        assert self.cache is not None
        device = _layers(self.cache)[0].keys.device
        rows = self.rows
        ids = torch.tensor([[r.pending] for r in rows], device=device)
        if len(rows) == 1:
            # A row alone has no padding (`keep` cut it): no mask, and its positions follow
            # from the cache. Building a mask costs more than the model's attention here (and
            # transformers then checks it for tracing, a CUDA call, at every step).
            out = self.model([rows[0].target.adapter], input_ids=ids, cache=self.cache,
                             use_cache=True)  # fmt: skip
        else:
            width = self.width
            lengths = torch.tensor([r.cached for r in rows], device=device)
            mask = torch.arange(width + 1, device=device)[None, :] >= (width - lengths)[:, None]
            out = self.model(
                [r.target.adapter for r in rows], input_ids=ids, attention_mask=mask.long(),
                position_ids=lengths[:, None], cache=self.cache, use_cache=True,
            )  # fmt: skip
        for r in rows:
            r.cached += 1
        return out.logits[:, -1, :]


class Scheduler:
    """Owns the decode thread; `submit` hands it a request, or raises QueueFull."""

    def __init__(self, max_batch: int, max_queue: int, device: torch.device,
                 stream_interval_s: float = 0.0, threads: int | None = None) -> None:  # fmt: skip
        self.max_batch, self.max_queue, self.device = max_batch, max_queue, device
        self.stream_interval_s = stream_interval_s
        self.threads = threads  # the decode thread's torch intra-op threads; None: the default
        self._held: set[Inbox] = set()  # inboxes holding text back (decode thread only)
        self.model_lock = threading.Lock()  # held by the decode thread while it uses the models
        self._waiting: deque[Row] = deque()
        self._lanes: dict[int, Lane] = {}
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="lorag-decode", daemon=True)
        self._thread.start()

    @property
    def running(self) -> int:
        return sum(len(lane.rows) for lane in list(self._lanes.values()))

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def inbox(self, live: bool = True) -> Inbox:
        """An inbox for one request's generations, read on the running loop; `live=False`
        for a reader that wants whole answers only."""
        return Inbox(asyncio.get_running_loop(), self.stream_interval_s, live)

    def submit(self, target: Target, prompt: list[int], sampling: Sampling,
               inbox: Inbox | None = None, index: int = 0) -> Generation:  # fmt: skip
        """Queue a request; its events arrive on the returned Generation (in `inbox` under
        `index`, or in an inbox of its own)."""
        gen = Generation(inbox or self.inbox(), index)
        row = Row(gen, target, prompt, sampling, TextTracker(target.tokenizer, sampling.stop),
                  generator_for(sampling, self.device))  # fmt: skip
        with self._wake:
            if len(self._waiting) >= self.max_queue + max(0, self.max_batch - self.running):
                raise QueueFull(
                    f"the server is busy: {self.running} requests running, "
                    f"{len(self._waiting)} waiting; retry shortly"
                )
            self._waiting.append(row)
            self._wake.notify()
        return gen

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        if self.threads is not None and self.device.type == "cpu":
            own_torch_threads(self.threads)
        while True:
            with self._wake:
                if not self._waiting and not self.running:
                    self._flush()
                while not self._stopping and not self._waiting and not self.running:
                    self._wake.wait()
                if self._stopping:
                    return
            try:
                with self.model_lock, torch.inference_mode():
                    self._admit()
                    for key, lane in list(self._lanes.items()):
                        self._decode(lane)
                        if not lane.rows:
                            del self._lanes[key]
            except Exception as exc:  # a bug or an out-of-memory: fail the rows, keep serving
                log.exception("decode step failed")
                for lane in self._lanes.values():
                    for row in lane.rows:
                        self._finish(row, Failed(exc))
                self._lanes.clear()

    def _admit(self) -> None:
        """Prefill the waiting requests there are free slots for, each model's together in one
        forward pass; they join their model's batch at the next step."""
        while (free := self.max_batch - self.running) > 0:
            with self._wake:
                rows = [self._waiting.popleft() for _ in range(min(free, len(self._waiting)))]
            if not rows:
                return
            self._flush()  # the running rows' text must not wait for these prefills
            together: dict[int, list[Row]] = {}
            for row in rows:
                if row.gen.cancelled:
                    self._finish(row, None)
                    continue
                try:
                    if row.target.prepare is not None:
                        row.target.prepare()
                except Exception as exc:  # its adapter would not load: this request fails
                    self._finish(row, Failed(exc))
                    continue
                together.setdefault(id(row.target.model), []).append(row)
            for group in together.values():
                self._start(group)

    def _start(self, rows: list[Row]) -> None:
        """Prefill rows of one model and let those not finished at once join its batch."""
        try:
            cache, logits = self._prefill(rows)
        except Exception as exc:
            for row in rows:
                self._finish(row, Failed(exc))
            return
        started = Lane(rows[0].target.model, rows, cache)
        keep = [i for i, row in enumerate(rows) if self._accept(row, logits[i])]
        if len(keep) < len(rows):
            started.keep(keep)
        if started.cache is not None:
            lane = self._lanes.setdefault(id(started.model), Lane(started.model))
            lane.join(started.rows, started.cache)

    def _prefill(self, rows: list[Row]) -> tuple[DynamicCache, torch.Tensor]:
        """One forward pass over the rows' prompts, left-padded to the longest as a lane's cache
        is (a row's own positions, a mask hiding the padding); each row's next-token logits."""
        cache = DynamicCache()
        model, adapters = rows[0].target.model, [r.target.adapter for r in rows]
        if len(rows) == 1:
            ids = torch.tensor([rows[0].prompt], device=self.device)
            out = model(adapters, input_ids=ids, cache=cache, use_cache=True, logits_to_keep=1)
        else:
            width = max(len(r.prompt) for r in rows)
            ids = torch.tensor([[0] * (width - len(r.prompt)) + r.prompt for r in rows],
                               device=self.device)  # fmt: skip
            pad = torch.tensor([width - len(r.prompt) for r in rows], device=self.device)
            columns = torch.arange(width, device=self.device)[None, :]
            out = model(
                adapters, input_ids=ids, attention_mask=(columns >= pad[:, None]).long(),
                position_ids=(columns - pad[:, None]).clamp(min=0), cache=cache, use_cache=True,
                logits_to_keep=1,
            )  # fmt: skip
        for row in rows:
            row.cached = len(row.prompt)
        return cache, out.logits[:, -1, :]

    def _decode(self, lane: Lane) -> None:
        live = [i for i, r in enumerate(lane.rows) if not r.gen.cancelled]
        for r in lane.rows:
            if r.gen.cancelled:
                self._finish(r, None)
        if len(live) < len(lane.rows):
            lane.keep(live)
        if not lane.rows:
            return
        logits = lane.step()
        keep = [i for i, row in enumerate(lane.rows) if self._accept(row, logits[i])]
        if len(keep) < len(lane.rows):
            lane.keep(keep)

    def _accept(self, row: Row, logits: torch.Tensor) -> bool:
        """Take the row's next token; False when the row is finished (and told so)."""
        token = sample(logits, row.sampling, row.rng)
        row.generated += 1
        finish = None
        if token in row.target.eos_ids:
            finish = "stop"
        else:
            row.text.add(token)
            if row.text.stopped:
                finish = "stop"
            elif row.generated >= row.sampling.max_tokens:
                finish = "length"
            elif row.cached + 1 >= row.target.max_positions:
                finish = "length"  # the model cannot attend further back
        if finish is None:
            if piece := row.text.piece():
                self._push(row, Delta(piece))
            row.pending = token
            return True
        if piece := row.text.piece(final=True):
            self._push(row, Delta(piece))
        self._finish(row, Done(finish, len(row.prompt), row.generated))
        return False

    def _push(self, row: Row, event: Event) -> None:
        if row.gen.push(event):
            self._held.add(row.gen.inbox)

    def _flush(self) -> None:
        """Deliver the text the inboxes hold back (before a prefill, or going idle)."""
        for inbox in self._held:
            inbox.flush()
        self._held.clear()

    def _finish(self, row: Row, event: Event | None) -> None:
        if event is not None:
            self._push(row, event)
        if row.target.release is not None:
            row.target.release()


def _layers(cache: DynamicCache) -> list[Any]:
    """The cache's layers; transformers types them as a union that includes linear-attention
    layers without keys, which the causal models served here do not use."""
    return list(cache.layers)


def own_torch_threads(n: int) -> None:
    """Give the calling thread `n` torch intra-op threads, leaving the default for threads to
    come (training's): torch.set_num_threads also sets the count new threads start with, so a
    short-lived thread puts that back (its own count dies with it)."""
    default = torch.get_num_threads()  # also starts this thread's torch threading state
    torch.set_num_threads(n)
    restore = threading.Thread(target=torch.set_num_threads, args=(default,))
    restore.start()
    restore.join()
