"""What a call to a lorag API can fail with, one class per kind of answer."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """An answer that is not a success: the status, a stable code, and what to do about it."""

    def __init__(
        self, message: str, *, status: int, code: str | None = None, hint: str | None = None,
        errors: list[dict[str, Any]] | None = None, retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message)
        self.message, self.status, self.code, self.hint = message, status, code, hint
        self.errors = errors or []  # field errors of a 422, as FastAPI reports them
        self.retry_after = retry_after


class Unauthorized(ServiceError):
    """401: no credentials, or wrong ones."""


class NotFound(ServiceError):
    """404: nothing of that name that the caller's owner may see."""


class Conflict(ServiceError):
    """409: the request fits, but not the thing's current state."""


class Invalid(ServiceError):
    """400 or 422: the request itself is wrong; `errors` says where."""


class RateLimited(ServiceError):
    """429: too many requests; `retry_after` seconds is when to try again."""


class Unavailable(ServiceError):
    """The service cannot be reached, is not ready, or failed (5xx)."""


BY_STATUS: dict[int, type[ServiceError]] = {
    400: Invalid, 401: Unauthorized, 403: Unauthorized, 404: NotFound, 409: Conflict,
    413: Invalid, 415: Invalid, 422: Invalid, 429: RateLimited,
}  # fmt: skip


def from_response(status: int, body: Any, retry_after: str | None = None) -> ServiceError:
    """The error an answer stands for; understands lorag's `{detail, code, hint}`, FastAPI's
    422 list and OpenAI's `{error: {message, code}}`."""
    code = hint = None
    errors: list[dict[str, Any]] = []
    message = f"HTTP {status}"
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(body.get("error"), dict):
            message = str(body["error"].get("message") or message)
            code = body["error"].get("code")
        elif isinstance(detail, list):
            errors = detail
            message = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
                for e in detail
            )
        elif detail is not None:
            message = str(detail)
        code = body.get("code", code)
        hint = body.get("hint")
    elif isinstance(body, str) and body:
        message = body[:500]
    kind = BY_STATUS.get(status, Unavailable if status >= 500 else ServiceError)
    wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    return kind(message, status=status, code=code, hint=hint, errors=errors, retry_after=wait)
