"""One request's decoding state: sampling its next token, and turning tokens into text that
stops at a stop sequence (streamed pieces never show a stop sequence, even a split one)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Sampling:
    """What one request asks of the decoder."""

    max_tokens: int
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


def generator_for(sampling: Sampling, device: torch.device) -> torch.Generator | None:
    """A private random stream per request: a seeded request samples the same tokens in any
    batch, whoever else is decoded with it."""
    if sampling.greedy:
        return None
    gen = torch.Generator(device=device)
    gen.manual_seed(sampling.seed if sampling.seed is not None else random.getrandbits(63))
    return gen


def sample(logits: torch.Tensor, sampling: Sampling, gen: torch.Generator | None) -> int:
    """The next token from one row's logits: temperature, then nucleus (top_p) sampling."""
    if sampling.greedy or gen is None:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_p, order = probs.sort(descending=True)
        outside = sorted_p.cumsum(-1) - sorted_p >= sampling.top_p  # keep the smallest nucleus
        sorted_p[outside] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    return int(torch.multinomial(probs, 1, generator=gen))


class TextTracker:
    """Detokenises incrementally (never emitting half a UTF-8 character) and applies stops."""

    def __init__(self, tokenizer: Any, stop: tuple[str, ...]) -> None:
        self.tokenizer, self.stop = tokenizer, stop
        self.tokens: list[int] = []
        self.text = ""  # everything decoded so far, cut at a stop sequence once one is seen
        self.sent = 0  # characters of `text` already handed out
        self._prefix, self._read = 0, 0  # token offsets of the incremental decoding
        self.stopped = False

    def add(self, token: int) -> None:
        """Take one generated token (not the end-of-sequence one)."""
        self.tokens.append(token)
        decode = self.tokenizer.decode
        before = decode(self.tokens[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self.tokens[self._prefix :], skip_special_tokens=True)
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return  # an incomplete character: wait for the next token
        start = max(0, len(self.text) - max((len(s) for s in self.stop), default=0))
        self.text += after[len(before) :]
        self._prefix, self._read = self._read, len(self.tokens)
        hits = [i for s in self.stop if (i := self.text.find(s, start)) != -1]
        if hits:
            self.text, self.stopped = self.text[: min(hits)], True

    def piece(self, final: bool = False) -> str:
        """Text not handed out yet; holds back a tail that may be the start of a stop sequence."""
        end = len(self.text) if final or self.stopped else len(self.text) - self._held_back()
        out = self.text[self.sent : end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return out

    def _held_back(self) -> int:
        for n in range(min(len(self.text), max((len(s) for s in self.stop), default=0)), 0, -1):
            tail = self.text[-n:]
            if any(s.startswith(tail) and s != tail for s in self.stop):
                return n
        return 0
