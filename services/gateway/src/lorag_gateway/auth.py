"""Bearer-token authentication: each token belongs to one owner, who sees only its own things."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lorag_core.db import tokens
from lorag_gateway.deps import GatewayDep

bearer = HTTPBearer(auto_error=False, description="A token from `lorag tokens create OWNER`.")
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


async def current_owner(
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """The owner of the request's token; 401 without one or with an unknown or revoked one,
    429 when the owner made more requests than the gateway's rate limit allows."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing token: send Authorization: Bearer TOKEN", UNAUTHORIZED)
    digest = tokens.digest(credentials.credentials)
    if (owner := gateway.tokens.owner(digest)) is None:
        async with gateway.db.connection() as conn:
            owner = await tokens.owner_of(conn, credentials.credentials)
        if owner is not None:
            gateway.tokens.remember(digest, owner)
    if owner is None:
        raise HTTPException(401, "invalid or revoked token", UNAUTHORIZED)
    if wait := gateway.limiter.take(owner):
        retry = str(max(1, math.ceil(wait)))
        detail = f"too many requests from {owner}; retry in {retry} s (LORAG_GATEWAY_RATE_LIMIT_*)"
        raise HTTPException(429, detail, {"Retry-After": retry})
    return owner


OwnerDep = Annotated[str, Depends(current_owner)]
