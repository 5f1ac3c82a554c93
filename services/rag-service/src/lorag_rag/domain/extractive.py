"""Extractive answers: the retrieved passages' sentences that best answer a question.

No text is generated, so the answer can only say what the sources say. Sentences are scored by
the cosine of their embedding with the question's, plus a small share for the question's words
they contain (it breaks ties between near-identical sentences, e.g. two clusters' names). A
sentence that is itself a question (the dataset's own Q/A rows) never answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

LEXICAL_SHARE = 0.2  # of a sentence's score; the rest is the embedding's cosine
MIN_CHARS = 8  # shorter fragments ("A:", list bullets) say nothing on their own
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
# Words a question shares with any sentence: they say nothing about which sentence answers it.
_STOPWORDS = (
    "a an and are as at be by do does did for from how in is it of on or the to was were what "
    "when where which who whom whose why with you your i we our this that these those"
)
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass(frozen=True)
class Sentence:
    text: str
    passage: int  # 1-based: the [n] the sentence cites


@dataclass(frozen=True)
class Scored:
    sentence: Sentence
    score: float


def sentences(passages: list[str]) -> list[Sentence]:
    """Each passage's sentences (and lines), questions and fragments left out."""
    found: list[Sentence] = []
    for n, passage in enumerate(passages, 1):
        for part in _SENTENCE_END.split(passage):
            text = part.strip().lstrip("#*-> ").strip()
            if len(text) >= MIN_CHARS and not text.endswith("?"):
                found.append(Sentence(text, n))
    return found


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOPWORDS}


def rank(
    question: str, question_vector: np.ndarray, candidates: list[Sentence], vectors: np.ndarray
) -> list[Scored]:
    """Candidates best first; vectors are unit length, one row per candidate."""
    if not candidates:
        return []
    cosines = vectors @ question_vector.reshape(-1)
    wanted = content_words(question)
    scored = []
    for sentence, cosine in zip(candidates, cosines, strict=True):
        overlap = len(wanted & content_words(sentence.text)) / len(wanted) if wanted else 0.0
        score = (1 - LEXICAL_SHARE) * float(cosine) + LEXICAL_SHARE * overlap
        scored.append(Scored(sentence, round(score, 4)))
    return sorted(scored, key=lambda s: -s.score)


def answer_text(best: list[Scored]) -> str:
    """The chosen sentences in the order they were ranked, each citing its passage as [n]."""
    return " ".join(f"{s.sentence.text} [{s.sentence.passage}]" for s in best)
