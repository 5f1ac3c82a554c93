"""Tokenised examples into batches that waste no compute on padding: packing or length grouping.

`pack` concatenates every sequence into one stream and cuts it into full blocks (padding only in
the last one); `group` keeps sequences whole and batches those of similar length together. Both
are deterministic for a seed and an epoch, so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from lorag_lora.domain.datasets import Example

IGNORE = -100  # label of tokens that carry no loss (prompt, padding)
Messages = Sequence[tuple[str, str]]


class SequenceTooLong(ValueError):
    """Examples exceed max_seq_len and the policy is to refuse them."""


@dataclass(frozen=True)
class TokenRow:
    input_ids: list[int]
    labels: list[int]


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor

    @property
    def useful_tokens(self) -> int:
        return int(self.attention_mask.sum())


@dataclass(frozen=True)
class Encoder:
    """How text becomes token ids: the tokenizer's functions, kept apart from its class."""

    encode: Callable[[list[str]], list[list[int]]]  # each text's ids, in one call
    render_prompt: Callable[[Messages], str]
    bos_id: int | None
    eos_id: int
    pad_id: int


def fallback_prompt(turns: list[dict[str, str]]) -> str:
    """The prompt format for tokenizers without a chat template."""
    return "".join(f"<|{t['role']}|>\n{t['content']}\n" for t in turns) + "<|assistant|>\n"


def split(examples: list[Example], eval_ratio: float, seed: int) -> tuple[list, list]:
    """A seeded train/eval split; at least one eval example when there are two or more."""
    order = list(examples)
    random.Random(seed).shuffle(order)
    n_eval = math.floor(len(order) * eval_ratio)
    if eval_ratio > 0 and n_eval == 0 and len(order) >= 2:
        n_eval = 1
    return order[n_eval:], order[:n_eval]


def encode_all(
    examples: list[Example], enc: Encoder, max_len: int, policy: str
) -> tuple[list[TokenRow], int]:
    """Token ids and labels of each example; returns them and how many were truncated.

    Every text goes to the tokenizer in one call: a fast tokenizer encodes a list faster than
    text by text (`python -m bench.profile_lora_tokenise`: bench lora's 4,800 paragraphs on the
    tiny base's tokenizer, rows included, median 0.29 s against 0.44 s for the bare per-text
    calls, eight alternating rounds).
    """
    texts: list[str] = []
    for ex in examples:
        if ex.text is not None:
            texts.append(ex.text)
        else:
            texts += [enc.render_prompt(ex.messages[:-1]), ex.messages[-1][1]]
    ids = iter(enc.encode(texts) if texts else [])
    out, too_long, longest = [], 0, 0
    for ex in examples:
        seq = _row(ex, enc, ids)
        if len(seq.input_ids) > max_len:
            too_long, longest = too_long + 1, max(longest, len(seq.input_ids))
            seq = TokenRow(seq.input_ids[:max_len], seq.labels[:max_len])
        out.append(seq)
    if too_long and policy == "fail":
        raise SequenceTooLong(
            f"{too_long} of {len(examples)} examples are longer than max_seq_len={max_len} tokens "
            f"(longest {longest}); shorten them, raise max_seq_len, or let lorag truncate them"
        )
    return out, too_long


def _row(ex: Example, enc: Encoder, ids: Iterator[list[int]]) -> TokenRow:
    """An example's row from its texts' ids, next in `ids` (one text, or a prompt and answer)."""
    head = [enc.bos_id] if enc.bos_id is not None else []
    if ex.text is not None:
        seq = [*head, *next(ids), enc.eos_id]
        return TokenRow(seq, list(seq))
    prompt = head + next(ids)
    answer = [*next(ids), enc.eos_id]
    return TokenRow(prompt + answer, [IGNORE] * len(prompt) + answer)


def packed_rows(seqs: list[TokenRow], block: int, seed: int) -> list[TokenRow]:
    """Concatenate the sequences (in a seeded order) and cut the stream into blocks."""
    order = list(seqs)
    random.Random(seed).shuffle(order)
    ids = [t for s in order for t in s.input_ids]
    labels = [t for s in order for t in s.labels]
    return [TokenRow(ids[i : i + block], labels[i : i + block]) for i in range(0, len(ids), block)]


def epoch_order(
    rows: list[TokenRow], batch_size: int, seed: int, epoch: int, mode: str
) -> list[list[int]]:
    """The row indexes of each batch of one epoch: shuffled by (seed, epoch); grouped by length
    in `group` mode. Batches are collated when trained on, so a run that stops mid-epoch (as
    `max_steps` often does) pads and copies only the batches it uses."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(rows)))
    rng.shuffle(order)
    if mode == "group":  # sort within mega-batches, then shuffle the batches themselves
        mega = batch_size * 32
        order = [
            i
            for m in range(0, len(order), mega)
            for i in sorted(order[m : m + mega], key=lambda i: len(rows[i].input_ids))
        ]
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if mode == "group":
        rng.shuffle(chunks)
    return chunks


def epoch_batches(
    rows: list[TokenRow], batch_size: int, seed: int, epoch: int, pad_id: int, mode: str
) -> list[Batch]:
    """Every batch of one epoch, collated (see `epoch_order`)."""
    chunks = epoch_order(rows, batch_size, seed, epoch, mode)
    return [collate([rows[i] for i in chunk], pad_id) for chunk in chunks]


def collate(rows: list[TokenRow], pad_id: int) -> Batch:
    """Right-pad rows to the longest; padding has no attention and no loss."""
    width = max(len(r.input_ids) for r in rows)
    # One tensor per field from padded lists: a torch.tensor per row cost more than the copy.
    ids = torch.tensor([r.input_ids + [pad_id] * (width - len(r.input_ids)) for r in rows])
    labels = torch.tensor([r.labels + [IGNORE] * (width - len(r.labels)) for r in rows])
    lengths = torch.tensor([len(r.input_ids) for r in rows])
    mask = (torch.arange(width) < lengths[:, None]).long()
    return Batch(ids, labels, mask)
