"""What the gateway's plain functions raise; app.py turns each into its HTTP status."""

from __future__ import annotations

from typing import Any


class Coded(Exception):
    """A refusal with a stable code and what the caller can do about it (both optional)."""

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.hint = code, hint


class NotFound(Coded, LookupError):
    """Nothing of that name that the caller owns (another owner's things are not found either)."""


class TooLarge(Coded, ValueError):
    """An upload over the configured limit (413)."""


class Unsupported(Coded, ValueError):
    """An upload of a file type datasets cannot have (415)."""


class Conflict(Coded, ValueError):
    """The request fits, but not the thing's current state (409)."""


class Invalid(ValueError):
    """Field-level problems, reported like FastAPI's own 422: a list of {loc, msg, type}."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e["msg"]) for e in errors))
        self.errors = errors

    @classmethod
    def field(cls, loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> Invalid:
        return cls([{"loc": list(loc), "msg": msg, "type": kind}])


class Forbidden(PermissionError):
    """The caller is known but may not do this (403), with a stable code and a hint."""

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.hint = code, hint
