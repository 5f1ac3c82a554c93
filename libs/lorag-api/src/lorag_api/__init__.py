"""Typed clients of lorag's service APIs.

A caller and a service share these request and response models and nothing else: the gateway,
the CLI and the services reach each other through them, never through each other's code.
"""

from lorag_api.base import ServiceClient, ServiceUrls
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
    "ServiceClient",
    "ServiceError",
    "ServiceUrls",
    "Unauthorized",
    "Unavailable",
]
