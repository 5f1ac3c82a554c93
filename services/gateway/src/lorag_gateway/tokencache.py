"""Grants of recently seen tokens, so most requests cost the gateway no database read."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from lorag_core.db.tokens import Grant

MAX_ENTRIES = 10_000  # far more live tokens than one gateway sees in a few seconds


class TokenCache:
    """A token's grant for `ttl_s` seconds after a database lookup found it live (0: off).

    The price is stated in the setting: a revoked token stops working within `ttl_s`. An
    expiring token is kept no longer than its expiry. Only live tokens are kept, by their
    sha256, so an unknown, revoked or expired one is always looked up. The lookup also writes
    the token's last_used_at, so a busy token costs one write per `ttl_s`.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._grants: dict[str, tuple[Grant, float]] = {}

    def grant(self, digest: str) -> Grant | None:
        found = self._grants.get(digest)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

    def owner(self, digest: str) -> str | None:
        found = self.grant(digest)
        return None if found is None else found.owner

    def remember(self, digest: str, grant: Grant | str) -> None:
        if self.ttl_s <= 0:
            return
        if isinstance(grant, str):  # an owner alone: a plain, unexpiring, read-write token
            grant = Grant("", grant, read_only=False, expires_at=None)
        if len(self._grants) >= MAX_ENTRIES:
            self._grants.clear()
        keep = self.ttl_s
        if grant.expires_at is not None:
            keep = min(keep, (grant.expires_at - datetime.now(UTC)).total_seconds())
        self._grants[digest] = (grant, time.monotonic() + keep)
