"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, for every status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)
TYPES = {401: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error",
         500: "server_error", 503: "server_error"}  # fmt: skip


class OpenAIError(Exception):
    """An error answered as OpenAI does; `headers` go out with it (Retry-After)."""

    def __init__(self, status: int, message: str, type_: str | None = None,
                 code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type_ or TYPES.get(status, "invalid_request_error")
        self.headers = headers


def error_response(err: OpenAIError) -> JSONResponse:
    body = {"message": err.message, "type": err.type, "param": err.param, "code": err.code}
    return JSONResponse({"error": body}, err.status, headers=err.headers)


def install(app: FastAPI, mapped: dict[type[Exception], tuple[int, str]]) -> None:
    """Answer every error of `app` in OpenAI's shape: ours, mapped domain errors, validation
    errors (422, with the offending field as `param`), unknown routes and crashes (500)."""

    async def ours(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OpenAIError)
        return error_response(exc)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "header")]
        message = f"{'.'.join(where) or 'request'}: {first.get('msg', 'invalid request')}"
        return error_response(OpenAIError(422, message, "invalid_request_error",
                                          "invalid_value", ".".join(where) or None))  # fmt: skip

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = {404: "unknown_url", 405: "method_not_allowed"}.get(exc.status_code)
        return error_response(OpenAIError(exc.status_code, str(exc.detail), code=code))

    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", exc_info=exc)
        return error_response(OpenAIError(500, f"internal error: {type(exc).__name__}",
                                          "server_error", "internal_error"))  # fmt: skip

    app.add_exception_handler(OpenAIError, ours)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, crashed)
    for kind, (status, code) in mapped.items():
        app.add_exception_handler(kind, _mapped(status, code))


def _mapped(status: int, code: str) -> Any:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return error_response(OpenAIError(status, str(exc), code=code))

    return handle
