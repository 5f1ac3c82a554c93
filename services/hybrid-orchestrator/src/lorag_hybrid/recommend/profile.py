"""What a dataset is: size, tokens, format, shape (Q/A, instructions, chat, prose), duplication,
language. Pure: it reads the texts it is given and imports no storage client."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

CHARS_PER_TOKEN = 4.0  # English BPE averages ~4 characters a token; good enough to size work
QA_KEYS = ({"question", "answer"}, {"q", "a"}, {"query", "response"})
INSTRUCTION_KEYS = (
    {"instruction", "response"},
    {"instruction", "output"},
    {"prompt", "completion"},
)
STOPWORDS = {
    "en": {"the", "and", "of", "to", "is", "in", "that", "it", "for", "with"},
    "de": {"der", "die", "und", "das", "ist", "nicht", "mit", "ein", "zu", "den"},
    "fr": {"le", "la", "les", "et", "est", "des", "une", "pour", "que", "dans"},
    "es": {"el", "la", "los", "y", "es", "que", "una", "para", "por", "con"},
}


class Shape(StrEnum):
    QA_PAIRS = "qa_pairs"  # facts to look up: RAG's home ground
    INSTRUCTIONS = "instructions"  # behaviour, style or format to learn: LoRA's
    CHAT = "chat"  # conversations: LoRA's
    PROSE = "prose"  # documents: RAG, or continued pre-training


@dataclass
class DatasetProfile:
    files: int = 0
    bytes: int = 0
    records: int = 0
    tokens: int = 0
    formats: Counter[str] = field(default_factory=Counter)
    shapes: Counter[Shape] = field(default_factory=Counter)
    duplicate_ratio: float = 0.0
    language: str = "unknown"

    @property
    def shape(self) -> Shape:
        """The dominant shape, by records."""
        return self.shapes.most_common(1)[0][0] if self.shapes else Shape.PROSE

    def share(self, shape: Shape) -> float:
        total = sum(self.shapes.values())
        return self.shapes[shape] / total if total else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "records": self.records,
            "tokens": self.tokens,
            "formats": dict(self.formats),
            "shapes": {s.value: n for s, n in self.shapes.items()},
            "shape": self.shape.value,
            "duplicate_ratio": round(self.duplicate_ratio, 3),
            "language": self.language,
        }


def profile(files: Iterable[tuple[str, bytes]]) -> DatasetProfile:
    """Profile (name, content) pairs; unreadable files count by size only."""
    result, seen, dupes, words = DatasetProfile(), set(), 0, Counter[str]()
    for name, data in files:
        result.files += 1
        result.bytes += len(data)
        suffix = name.rsplit(".", 1)[-1].lower() if "." in name else "txt"
        result.formats[suffix] += 1
        text = data.decode("utf-8", errors="replace")
        for shape, record in _records(suffix, text):
            result.records += 1
            result.shapes[shape] += 1
            result.tokens += max(1, round(len(record) / CHARS_PER_TOKEN))
            digest = hashlib.sha1(record.strip().lower().encode()).digest()
            dupes += digest in seen
            seen.add(digest)
            if len(words) < 50_000:
                words.update(re.findall(r"[a-zà-ÿ]+", record.lower())[:200])
    result.duplicate_ratio = dupes / result.records if result.records else 0.0
    result.language = _language(words)
    return result


def _records(suffix: str, text: str) -> Iterable[tuple[Shape, str]]:
    if suffix == "jsonl":
        for line in text.splitlines():
            if line.strip():
                yield _json_record(line)
    elif suffix == "csv":
        for row in csv.DictReader(io.StringIO(text)):
            yield (
                _keyed_shape({k.lower() for k in row if k}),
                " ".join(str(v) for v in row.values()),
            )
    else:  # prose: one record a paragraph
        for paragraph in re.split(r"\n\s*\n", text):
            if paragraph.strip():
                yield Shape.PROSE, paragraph


def _json_record(line: str) -> tuple[Shape, str]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError:
        return Shape.PROSE, line
    if not isinstance(item, dict):
        return Shape.PROSE, line
    if isinstance(item.get("messages"), list):
        return Shape.CHAT, json.dumps(item["messages"])
    return _keyed_shape({k.lower() for k in item}), " ".join(str(v) for v in item.values())


def _keyed_shape(keys: set[str]) -> Shape:
    if any(pair <= keys for pair in QA_KEYS):
        return Shape.QA_PAIRS
    if any(pair <= keys for pair in INSTRUCTION_KEYS):
        return Shape.INSTRUCTIONS
    return Shape.PROSE


def _language(words: Counter[str]) -> str:
    hits = {lang: sum(words[w] for w in stop) for lang, stop in STOPWORDS.items()}
    best = max(hits, key=lambda lang: hits[lang])
    total = sum(words.values())
    return best if total and hits[best] / total > 0.02 else "unknown"
