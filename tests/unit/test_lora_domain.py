"""The lora-service's rules: references, datasets, batching, architectures."""

from __future__ import annotations

import json

import pytest
import torch

from lorag_lora.domain.architectures import TargetModulesMissing, check_targets, default_targets
from lorag_lora.domain.batching import (
    IGNORE,
    Encoder,
    SequenceTooLong,
    TokenRow,
    collate,
    encode_all,
    epoch_batches,
    epoch_order,
    fallback_prompt,
    packed_rows,
    split,
)
from lorag_lora.domain.datasets import DatasetInvalid, Example, parse_file
from lorag_lora.domain.registry import AdapterRef, BadReference, created_event_id, parse_ref

ENC = Encoder(
    encode=lambda texts: [[ord(c) % 50 + 3 for c in text] for text in texts],
    render_prompt=lambda messages: fallback_prompt(
        [{"role": r, "content": c} for r, c in messages]
    ),
    bos_id=1,
    eos_id=2,
    pad_id=0,
)


def test_model_references():
    assert parse_ref("base") is None
    assert parse_ref("tone") == AdapterRef("tone", alias="latest")
    assert parse_ref("tone:3") == AdapterRef("tone", version=3)
    assert parse_ref("tone@production") == AdapterRef("tone", alias="production")
    for bad in ("tone:0", "tone:x", "@prod", "a b"):
        with pytest.raises(BadReference):
            parse_ref(bad)
    assert created_event_id("tone", 1) == created_event_id("tone", 1) != created_event_id("tone", 2)


def test_datasets_of_every_shape():
    lines = [
        {"instruction": "hi", "response": "hello"},
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
        {"text": "plain"},
    ]
    examples = parse_file("d.jsonl", "\n".join(json.dumps(x) for x in lines).encode())
    assert examples[0] == Example(messages=(("user", "hi"), ("assistant", "hello")))
    assert examples[2].text == "plain"
    csv_rows = parse_file("d.csv", b"question,answer\nq1,a1\nq2,a2\n")
    assert csv_rows[1].messages[-1] == ("assistant", "a2")
    assert len(parse_file("d.txt", b"one\n\ntwo\n\n")) == 2


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("d.jsonl", b'{"question": "only"}', "found fields ['question']"),
        ("d.jsonl", b"{nope", "line 1 is not JSON"),
        ("d.csv", b"a,b\n1,2\n", "row 2"),
        ("d.jsonl", b"\xff\xfe", "not UTF-8"),
        ("d.bin", b"x", "unsupported format"),
        ("d.jsonl", b'{"messages": [{"role": "user", "content": "x"}]}', "assistant"),
    ],
)
def test_bad_datasets_say_where_and_why(name, data, words):
    with pytest.raises(DatasetInvalid, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_file(name, data)


def test_prompt_tokens_carry_no_loss_and_long_examples_follow_the_policy():
    ex = Example(messages=(("user", "question"), ("assistant", "ok")))
    (row,), cut = encode_all([ex], ENC, 1000, "fail")
    answer = len("ok") + 1
    assert cut == 0 and row.labels[-answer:] == row.input_ids[-answer:]
    assert set(row.labels[:-answer]) == {IGNORE}
    rows, cut = encode_all([ex, Example(text="x" * 50)], ENC, 20, "truncate")
    assert cut == 2 and all(len(r.input_ids) <= 20 for r in rows)
    with pytest.raises(SequenceTooLong, match="longer than max_seq_len=20"):
        encode_all([ex], ENC, 20, "fail")


def test_packing_leaves_padding_only_in_the_last_block_and_grouping_sorts_lengths():
    seqs = [TokenRow([5] * n, [5] * n) for n in (3, 17, 9, 30, 4, 12, 25, 8)]
    blocks = packed_rows(seqs, 16, seed=0)
    assert all(len(b.input_ids) == 16 for b in blocks[:-1])
    assert sum(len(b.input_ids) for b in blocks) == sum(len(s.input_ids) for s in seqs)
    batches = epoch_batches(seqs, 2, seed=0, epoch=0, pad_id=0, mode="group")
    padded = sum(b.input_ids.numel() for b in batches)
    useful = sum(b.useful_tokens for b in batches)
    assert useful == 108 and padded - useful < 30
    again = epoch_batches(seqs, 2, seed=0, epoch=0, pad_id=0, mode="group")
    assert all((x.input_ids == y.input_ids).all() for x, y in zip(batches, again, strict=True))


def test_split_is_seeded_and_keeps_one_eval_example():
    examples = [Example(text=str(i)) for i in range(10)]
    assert split(examples, 0.1, 3) == split(examples, 0.1, 3)
    train, held = split(examples[:3], 0.1, 0)
    assert len(held) == 1 and len(train) == 2
    assert split(examples, 0.0, 0)[1] == []


def test_target_modules_per_architecture():
    assert default_targets("llama") == ("q_proj", "v_proj")
    assert default_targets("gpt2") == ("c_attn",)
    names = ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"]
    assert check_targets(["q_proj"], names) == ("q_proj",)
    with pytest.raises(TargetModulesMissing, match="it has: q_proj, v_proj"):
        check_targets(["wq"], names)


def test_collate_pads_right_with_no_attention_and_no_loss():
    rows = [TokenRow([5, 6, 7], [5, 6, 7]), TokenRow([8], [-100])]
    batch = collate(rows, pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch.labels.tolist() == [[5, 6, 7], [-100, -100, -100]]
    assert batch.attention_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch.input_ids.dtype == batch.attention_mask.dtype == torch.long
    assert batch.useful_tokens == 4


def test_epoch_order_names_the_rows_of_epoch_batches():
    seqs = [TokenRow([i] * (1 + i % 5), [i] * (1 + i % 5)) for i in range(23)]
    for mode in ("pack", "group"):
        order = epoch_order(seqs, 4, seed=3, epoch=1, mode=mode)
        batches = epoch_batches(seqs, 4, seed=3, epoch=1, pad_id=0, mode=mode)
        assert sorted(i for chunk in order for i in chunk) == list(range(23))
        for chunk, batch in zip(order, batches, strict=True):
            assert batch.input_ids[:, 0].tolist() == chunk
