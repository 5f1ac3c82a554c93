"""Who calls the OpenAI API: the owner behind the bearer key.

A gateway token (`lorag tokens create OWNER`) is that owner's key. The service token is a
lorag service's key, acting for the owner in X-Lorag-Owner. On the local profile a call without a
key acts as "default", as the CLI does. Minimal: the serving branch's version supersedes it.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from lorag_core.db import tokens
from lorag_core.settings import Profile


class KeyRefused(Exception):
    """No valid API key: 401 in OpenAI's error shape."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def api_key_owner(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_lorag_owner: Annotated[str | None, Header()] = None,
) -> str:
    """The owner the caller's key stands for (FastAPI dependency)."""
    runtime = request.app.state.runtime
    key = (authorization or "").removeprefix("Bearer ").strip()
    if not key:
        if runtime.settings.profile is Profile.LOCAL:
            return x_lorag_owner or "default"
        raise KeyRefused("no API key: send Authorization: Bearer <key>")
    if hmac.compare_digest(key, runtime.settings.service_secret):
        return x_lorag_owner or "default"
    async with runtime.db.connection() as conn:
        owner = await tokens.owner_of(conn, key)
    if owner is None:
        raise KeyRefused("invalid API key: make one with `lorag tokens create OWNER`")
    return owner


OwnerDep = Annotated[str, Depends(api_key_owner)]
