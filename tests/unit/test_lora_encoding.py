"""A job's examples are tokenised in one call and come out as they would one text at a time."""

from lorag_lora.adapters.models import ModelManager
from lorag_lora.config import LoraSettings
from lorag_lora.domain.batching import IGNORE, Encoder, TokenRow, encode_all, fallback_prompt
from lorag_lora.domain.datasets import Example

EXAMPLES = [
    Example(text="Log 1: the amber valve was checked."),
    Example(messages=(("user", "How old is the seal?"), ("assistant", "Three years."))),
    Example(text=""),
    Example(text="Ünïcödé, tabs\tand\nnew lines, and a literal </s> inside"),
    Example(messages=(("system", "Be brief."), ("user", "And the pressure?"), ("assistant", ""))),
    Example(text="word " * 300),
]


def one_at_a_time(examples, encode_one, enc):
    """The rows as they were built before: each text encoded on its own."""
    head = [enc.bos_id] if enc.bos_id is not None else []
    rows = []
    for ex in examples:
        if ex.text is not None:
            ids = [*head, *encode_one(ex.text), enc.eos_id]
            rows.append(TokenRow(ids, list(ids)))
        else:
            prompt = head + encode_one(enc.render_prompt(ex.messages[:-1]))
            answer = [*encode_one(ex.messages[-1][1]), enc.eos_id]
            rows.append(TokenRow(prompt + answer, [IGNORE] * len(prompt) + answer))
    return rows


def test_the_base_tokenizer_gives_the_same_rows_in_one_call(tmp_path):
    base = ModelManager(LoraSettings(models_dir=tmp_path / "models")).load(None)
    enc = base.encoder()
    rows, cut = encode_all(EXAMPLES, enc, 10_000, "fail")
    expected = one_at_a_time(
        EXAMPLES, lambda text: base.tokenizer.encode(text, add_special_tokens=False), enc
    )
    assert cut == 0
    assert rows == expected
    assert len(rows[-1].input_ids) > 300  # the long one was not cut by the tokenizer


def test_every_text_goes_to_the_tokenizer_in_one_call_in_order():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return [[len(t) + 3] for t in texts]

    enc = Encoder(
        encode=encode,
        render_prompt=lambda messages: fallback_prompt(
            [{"role": r, "content": c} for r, c in messages]
        ),
        bos_id=None,
        eos_id=2,
        pad_id=0,
    )
    rows, _ = encode_all(EXAMPLES[:2], enc, 100, "fail")
    prompt = fallback_prompt([{"role": "user", "content": "How old is the seal?"}])
    assert calls == [[EXAMPLES[0].text, prompt, "Three years."]]
    assert rows[0] == TokenRow([len(EXAMPLES[0].text) + 3, 2], [len(EXAMPLES[0].text) + 3, 2])
    assert rows[1] == TokenRow([len(prompt) + 3, 15, 2], [IGNORE, 15, 2])
    assert encode_all([], enc, 100, "fail") == ([], 0)
    assert len(calls) == 1  # no examples, no call
