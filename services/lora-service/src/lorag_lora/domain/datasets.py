"""Training examples from JSONL, CSV or plain text: instruction pairs, chat messages or text."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

PROMPT_KEYS = ("instruction", "prompt", "question", "input")
RESPONSE_KEYS = ("response", "completion", "answer", "output")
TEXT_SUFFIXES = (".txt", ".md")


class DatasetInvalid(ValueError):
    """The dataset cannot be turned into training examples; the message says where and why."""


@dataclass(frozen=True)
class Example:
    """One training example: chat messages (loss on the last assistant turn) or plain text."""

    messages: tuple[tuple[str, str], ...] = ()
    text: str | None = None


def parse_file(name: str, data: bytes) -> list[Example]:
    """Examples of one file, by its suffix: .jsonl/.json, .csv, .txt/.md."""
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetInvalid(
            f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    if "\x00" in content:
        raise DatasetInvalid(f"{name} looks binary (it holds NUL bytes)")
    lower = name.lower()
    if lower.endswith((".jsonl", ".json")):
        return _jsonl(name, content)
    if lower.endswith(".csv"):
        rows = csv.DictReader(io.StringIO(content))
        return [example_of(row, f"{name} row {i}") for i, row in enumerate(rows, 2)]
    if lower.endswith(TEXT_SUFFIXES):
        return [Example(text=p.strip()) for p in content.split("\n\n") if p.strip()]
    raise DatasetInvalid(f"{name}: unsupported format; use .jsonl, .csv, .txt or .md")


def _jsonl(name: str, content: str) -> list[Example]:
    out = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetInvalid(f"{name} line {number} is not JSON: {exc.msg}") from None
        out.append(example_of(record, f"{name} line {number}"))
    return out


def example_of(record: Any, where: str) -> Example:
    """One record as an example; names the accepted shapes when it fits none."""
    if not isinstance(record, dict):
        raise DatasetInvalid(f"{where}: expected an object, got {type(record).__name__}")
    if "messages" in record:
        return Example(messages=_messages(record["messages"], where))
    prompt = next((record[k] for k in PROMPT_KEYS if record.get(k)), None)
    response = next((record[k] for k in RESPONSE_KEYS if record.get(k)), None)
    if isinstance(prompt, str) and isinstance(response, str):
        return Example(messages=(("user", prompt), ("assistant", response)))
    if isinstance(record.get("text"), str) and record["text"].strip():
        return Example(text=record["text"])
    raise DatasetInvalid(
        f"{where}: needs instruction+response (or prompt/completion, question/answer, "
        f"input/output), messages, or text; found fields {sorted(record)}"
    )


def _messages(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or not value:
        raise DatasetInvalid(f"{where}: messages must be a non-empty list")
    out = []
    for m in value:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m):
            raise DatasetInvalid(f"{where}: each message needs a role and a content")
        out.append((m["role"], str(m["content"])))
    if out[-1][0] != "assistant":
        raise DatasetInvalid(f"{where}: the last message must be the assistant's (it is learned)")
    return tuple(out)
