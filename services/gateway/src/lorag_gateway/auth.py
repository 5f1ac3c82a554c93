"""Bearer-token authentication: each token belongs to one owner, who sees only its own things.

A read-only token may call GET routes and the POST routes that only read (`ReaderDep`: query,
ask, recommend); every other route takes `OwnerDep`, which refuses it with 403, so a new
writing route is closed to read-only tokens unless it says otherwise.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lorag_core.db import tokens
from lorag_gateway.deps import GatewayDep
from lorag_gateway.errors import Forbidden

bearer = HTTPBearer(auto_error=False, description="A token from `lorag tokens create OWNER`.")
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}
READING = frozenset({"GET", "HEAD", "OPTIONS"})


async def authenticate(
    gateway: GatewayDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> tokens.Grant:
    """The grant of the request's token; 401 without one or with an unknown, revoked or
    expired one, 429 when the owner made more requests than the gateway's rate limit allows."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing token: send Authorization: Bearer TOKEN", UNAUTHORIZED)
    digest = tokens.digest(credentials.credentials)
    if (grant := gateway.tokens.grant(digest)) is None:
        async with gateway.db.connection() as conn:
            try:
                grant = await tokens.use(conn, credentials.credentials)
            except tokens.Expired as exc:
                detail = f"{exc}; ask for a new one (`lorag tokens create OWNER`)"
                raise HTTPException(401, detail, UNAUTHORIZED) from None
        if grant is not None:
            gateway.tokens.remember(digest, grant)
    if grant is None:
        raise HTTPException(401, "invalid or revoked token", UNAUTHORIZED)
    if wait := gateway.limiter.take(grant.owner):
        retry = str(max(1, math.ceil(wait)))
        detail = (
            f"too many requests from {grant.owner}; retry in {retry} s (LORAG_GATEWAY_RATE_LIMIT_*)"
        )
        raise HTTPException(429, detail, {"Retry-After": retry})
    return grant


GrantDep = Annotated[tokens.Grant, Depends(authenticate)]


async def reading_owner(grant: GrantDep) -> str:
    """The owner, for routes that only read (any live token)."""
    return grant.owner


async def current_owner(request: Request, grant: GrantDep) -> str:
    """The owner, for routes that may change things: 403 for a read-only token unless the
    request only reads."""
    if grant.read_only and request.method not in READING:
        raise Forbidden(
            f"token {grant.token_id} is read-only: it cannot {request.method} {request.url.path}",
            code="READ_ONLY_TOKEN",
            hint="use a token made without --read-only (`lorag tokens create OWNER`)",
        )
    return grant.owner


OwnerDep = Annotated[str, Depends(current_owner)]
ReaderDep = Annotated[str, Depends(reading_owner)]
