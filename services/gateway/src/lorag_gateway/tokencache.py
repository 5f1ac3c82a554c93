"""Owners of recently seen tokens, so most requests cost the gateway no database read."""

from __future__ import annotations

import time

MAX_ENTRIES = 10_000  # far more live tokens than one gateway sees in a few seconds


class TokenCache:
    """A token's owner for `ttl_s` seconds after a database lookup found it live (0: off).

    The price is stated in the setting: a revoked token stops working within `ttl_s`. Only
    live tokens are kept, by their sha256, so an unknown or revoked one is always looked up.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._owners: dict[str, tuple[str, float]] = {}

    def owner(self, digest: str) -> str | None:
        found = self._owners.get(digest)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def remember(self, digest: str, owner: str) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._owners) >= MAX_ENTRIES:
            self._owners.clear()
        self._owners[digest] = (owner, time.monotonic() + self.ttl_s)
