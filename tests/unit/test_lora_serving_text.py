"""The serving engine's text handling: incremental decoding, stop sequences held back while
streaming, and seeded sampling that does not depend on the batch."""

from __future__ import annotations

import torch

from lorag_lora.serving.sampling import Sampling, TextTracker, generator_for, sample


class CharTokenizer:
    """Token i is chr(i); 0xFFFD stands for half a character."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)


def feed(tracker: TextTracker, text: str) -> list[str]:
    pieces = []
    for ch in text:
        tracker.add(ord(ch))
        pieces.append(tracker.piece())
        if tracker.stopped:
            break
    pieces.append(tracker.piece(final=True))
    return [p for p in pieces if p]


def test_stop_sequence_cuts_the_text_and_is_never_streamed():
    tracker = TextTracker(CharTokenizer(), ("END",))
    pieces = feed(tracker, "hello ENDING")
    assert "".join(pieces) == "hello " and tracker.stopped
    assert all("E" not in p for p in pieces)


def test_a_partial_stop_is_released_when_it_turns_out_not_to_be_one():
    tracker = TextTracker(CharTokenizer(), ("END",))
    assert "".join(feed(tracker, "an ENtry")) == "an ENtry" and not tracker.stopped


def test_the_earliest_of_several_stops_wins():
    tracker = TextTracker(CharTokenizer(), ("cd", "b"))
    assert "".join(feed(tracker, "abcd")) == "a"


def test_half_characters_wait_for_the_rest():
    tracker = TextTracker(CharTokenizer(), ())
    tracker.add(0xFFFD)
    assert tracker.piece() == ""


def test_seeded_sampling_repeats_and_greedy_is_argmax():
    logits = torch.randn(50)
    params = Sampling(8, temperature=1.0, top_p=0.9, seed=11)
    first = [sample(logits, params, g) for g in [generator_for(params, torch.device("cpu"))] * 5]
    again = [sample(logits, params, g) for g in [generator_for(params, torch.device("cpu"))] * 5]
    assert first == again
    assert sample(logits, Sampling(8), None) == int(logits.argmax())
    tiny_nucleus = Sampling(8, temperature=1.0, top_p=1e-9, seed=1)
    assert sample(logits, tiny_nucleus, generator_for(tiny_nucleus, torch.device("cpu"))) == int(
        logits.argmax()
    )
