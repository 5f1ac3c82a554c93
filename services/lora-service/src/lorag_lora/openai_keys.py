"""Who calls the OpenAI API: `api_key_owner`, a FastAPI dependency every `/v1` route uses.

A caller is one of:
- an API key: a gateway token (`lorag tokens create`, table gateway_tokens) or a key in
  LORAG_LORA_API_KEYS; it acts for the key's owner;
- the service token (other lorag services): a trusted caller acting for `X-Lorag-Owner`
  (for no one in particular without that header);
- nobody, where keys are not required (the local profile by default).
The dependency answers the owner, or None when the caller may see every owner's models.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Header, Request
from psycopg_pool import AsyncConnectionPool

from lorag_core.db import tokens
from lorag_lora.serving.errors import OpenAIError

REMEMBER_S = 10.0  # a revoked gateway token stops working within this


@dataclass
class KeyStore:
    """The keys the API accepts; kept on the app as `app.state.api_keys`."""

    service_token: str | None
    static: dict[str, str]  # key -> owner
    required: bool
    pool_of: Callable[[], AsyncConnectionPool | None]
    _seen: dict[str, tuple[float, str | None]] = field(default_factory=dict)

    async def owner_of(self, key: str) -> str | None:
        """The owner of a live key, or None for an unknown or revoked one."""
        for known, its_owner in self.static.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                return its_owner
        now = time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and now - hit[0] < REMEMBER_S:
            return hit[1]
        pool = self.pool_of()
        if pool is None:
            return None
        async with pool.connection() as conn:
            owner = await tokens.owner_of(conn, key)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (now, owner)
        return owner


def _unauthorized(message: str) -> OpenAIError:
    return OpenAIError(401, message, "invalid_request_error", "invalid_api_key")


async def api_key_owner(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_lorag_owner: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> str | None:
    """The owner the caller acts for; None: a keyless local call or a service acting for no
    one (it sees every model). Where keys are required, a missing, unknown or revoked key is a
    401 in OpenAI's shape."""
    store: KeyStore = request.app.state.api_keys
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        if store.required:
            raise _unauthorized(
                "no API key given: send 'Authorization: Bearer <key>' (`lorag tokens create`)"
            )
        return None
    if store.service_token and hmac.compare_digest(key.encode(), store.service_token.encode()):
        return x_lorag_owner or None
    owner = await store.owner_of(key)
    # Keys optional: a placeholder key ("none", "EMPTY", as clients of local servers send) is a
    # keyless call, but a lorag token that is unknown, revoked or expired is still refused.
    if owner is None and (store.required or key.startswith(tokens.PREFIX)):
        raise _unauthorized(
            "the API key is unknown, revoked or expired: make one with `lorag tokens create OWNER`"
        )
    return owner


Owner = Annotated[str | None, Depends(api_key_owner)]


async def acting_owner(owner: Owner) -> str:
    """Who a new file or fine-tuning job belongs to: a keyless local call, or a service acting
    for no one, makes it for "default", as the CLI does."""
    return owner or "default"


ActingOwner = Annotated[str, Depends(acting_owner)]
