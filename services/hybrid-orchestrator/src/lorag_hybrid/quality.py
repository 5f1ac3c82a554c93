"""Degenerate generations: text that repeats itself, or says nothing the sources say.

A tiny local model can answer "checkpoint checkpoint checkpoint …" while its sources hold the fact;
such a reply is routed away from, and scores nothing in evaluation.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

MIN_TOKENS = 6  # shorter answers ("harbor-seventeen [1]") are too short to judge repetition
TOP_TOKEN_SHARE = 0.3  # one word is this much of the answer: it is stuck on it
DISTINCT_TRIGRAMS = 0.6  # fewer distinct word triples than this share: it loops
_WORD = re.compile(r"[a-z0-9]+")
_CITATION = re.compile(r"\[\d+\]")
_STOPWORDS = (
    "a an and are as at be by do does did for from how in is it of on or the to was were what "
    "when where which who this that these those not no i you we they he she there"
)
STOPWORDS = frozenset(_STOPWORDS.split())


def words(text: str) -> list[str]:
    return _WORD.findall(_CITATION.sub(" ", text.lower()))


def degenerate(answer: str, sources: Iterable[str] = ()) -> str | None:
    """Why the answer is degenerate (empty, repetition, no overlap with the sources), or None."""
    tokens = words(answer)
    if not tokens:
        return "empty"
    if len(tokens) >= MIN_TOKENS:
        content = [t for t in tokens if t not in STOPWORDS] or tokens  # "the" repeats in prose
        top, count = Counter(content).most_common(1)[0]
        if count / len(tokens) >= TOP_TOKEN_SHARE and count >= 3:
            return f"repetition: {top!r} is {count} of {len(tokens)} words"
        trigrams = list(zip(tokens, tokens[1:], tokens[2:], strict=False))
        if len(trigrams) >= 4 and len(set(trigrams)) / len(trigrams) < DISTINCT_TRIGRAMS:
            return "repetition: the same phrases loop"
    said = {w for text in sources for w in words(text)} - STOPWORDS
    if said and not (set(tokens) - STOPWORDS) & said:
        return "no overlap with the sources"
    return None
