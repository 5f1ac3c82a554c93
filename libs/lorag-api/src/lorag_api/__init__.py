"""Typed clients of lorag's service APIs.

A caller and a service share these request and response models and nothing else: the gateway,
the CLI and the services reach each other through them, never through each other's code. The
package itself exports only the errors, so a light caller (the CLI) does not pay for pydantic
and httpx until it builds a client (`lorag_api.base`, `lorag_api.rag`, ...).
"""

from lorag_api.errors import (
    Conflict,
    Invalid,
    NotFound,
    RateLimited,
    ServiceError,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "Conflict",
    "Invalid",
    "NotFound",
    "RateLimited",
    "ServiceError",
    "Unauthorized",
    "Unavailable",
]
