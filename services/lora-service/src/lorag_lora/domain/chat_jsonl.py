"""OpenAI's fine-tuning file format: JSONL, one chat per line, checked line by line at upload."""

from __future__ import annotations

import json
from typing import Any

ROLES = frozenset({"system", "user", "assistant"})


class BadLine(ValueError):
    """A line that is not a chat example; says which line and why."""

    def __init__(self, line: int, why: str) -> None:
        super().__init__(f"line {line}: {why}")
        self.line = line


def check(data: bytes) -> int:
    """The number of examples; BadLine for the first line that is not a chat example."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(data[: exc.start].count(b"\n") + 1, "is not UTF-8 text") from None
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadLine(number, f"is not JSON ({exc.msg})") from None
        _check_record(number, record)
        count += 1
    if not count:
        raise BadLine(1, "the file holds no examples")
    return count


def _check_record(number: int, record: Any) -> None:
    if not isinstance(record, dict):
        raise BadLine(number, f"expected an object, got {type(record).__name__}")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadLine(number, "lacks `messages` (a non-empty list of {role, content})")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise BadLine(number, f"messages[{i}] needs a role of system, user or assistant")
        if not isinstance(message.get("content"), str):
            raise BadLine(number, f"messages[{i}] needs a string content")
    if messages[-1]["role"] != "assistant":
        raise BadLine(number, "the last message must be the assistant's (it is what is learned)")


def chat_lines(rows: list[tuple[str, str]], system: str | None = None) -> bytes:
    """(question, answer) rows as chat JSONL, the format a fine-tuning provider takes."""
    head = [{"role": "system", "content": system}] if system else []
    lines = [
        json.dumps({"messages": [*head, {"role": "user", "content": q},
                                 {"role": "assistant", "content": a}]})
        for q, a in rows
    ]  # fmt: skip
    return ("\n".join(lines) + "\n").encode()
