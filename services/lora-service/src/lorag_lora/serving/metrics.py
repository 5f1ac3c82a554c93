"""Serving metrics: request latency, tokens, adapter cache hits. The engine calls these three."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

REQUEST_SECONDS = Histogram(
    "lorag_serving_request_seconds", "Chat completion latency, by model and whether streamed.",
    ["model", "stream"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
TOKENS = Counter("lorag_serving_tokens", "Tokens served, by kind (prompt, completion).", ["kind"])
ADAPTER_CACHE = Counter(
    "lorag_serving_adapter_cache", "Adapter look-ups by result (hit: loaded already; miss).",
    ["result"],
)  # fmt: skip


def request_done(model: str, stream: bool, seconds: float) -> None:
    """One chat completion answered (or its stream ended)."""
    REQUEST_SECONDS.labels(model=model, stream=str(stream).lower()).observe(seconds)


def tokens(prompt: int, completion: int) -> None:
    """Tokens one completion read and wrote."""
    TOKENS.labels(kind="prompt").inc(prompt)
    TOKENS.labels(kind="completion").inc(completion)


def adapter_lookup(hit: bool) -> None:
    """An adapter was asked for: already loaded (hit) or loaded now (miss)."""
    ADAPTER_CACHE.labels(result="hit" if hit else "miss").inc()
