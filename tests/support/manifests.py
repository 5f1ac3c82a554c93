"""What the deployment-file tests share: loopback addresses, and walking manifests' strings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# 127.0.0.0/8, localhost and the IPv6 loopback: an address that only works on one host.
LOOPBACK = re.compile(
    r"(?<![\w.])(?:127(?:\.\d{1,3}){3}|localhost|0:0:0:0:0:0:0:1)(?![\w.])|(?<![\w:])::1(?![\w:])",
    re.IGNORECASE,
)


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every key and scalar in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", str(key)
            yield from strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from strings(item, f"{path}[{i}]")
    elif node is not None:
        yield path, str(node)
