"""Every service's own HTTP API, served on its service port beside `/health` and `/ready`.

Routes a service adds are for other lorag processes only: each call must present the shared
service token (`Authorization: Bearer $LORAG_SERVICE_TOKEN`), and calls made on behalf of a
person name that person's owner in `X-Lorag-Owner`. The service that owns the data enforces
ownership: another owner's things answer 404, exactly like things that do not exist.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

OWNER_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
Responses = dict[int | str, dict[str, Any]]  # a route's documented answers besides success
Check = Callable[[], Awaitable[dict[str, object]]]
bearer = HTTPBearer(auto_error=False, description="The shared service token.")


class ApiError(Exception):
    """An answer other than success, with a stable code and what the caller can do about it."""

    status = 400

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code, self.hint = code, hint


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Unavailable(ApiError):
    status = 503


def service_app(
    service: str, readiness: Check, token: str, *, instance_id: str | None = None
) -> FastAPI:
    """The app of one service: health, readiness, and (added later) its authenticated routes.

    `/health` names the instance too, so replicas of one service can be told apart.
    """
    app = FastAPI(
        title=f"lorag {service}", version="1", docs_url="/docs", openapi_url="/openapi.json",
        redoc_url=None,
    )  # fmt: skip
    app.state.service_token = token
    app.add_middleware(RefuseNul)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "code": exc.code, "hint": exc.hint}, status_code=exc.status
        )

    @app.get("/health", tags=["operations"], summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service, "instance": instance_id or service}

    @app.get("/ready", tags=["operations"], summary="Its dependencies answer",
             responses={503: {"description": "Not ready"}})  # fmt: skip
    async def ready() -> JSONResponse:
        checks = await readiness()
        ok = all(v is True for v in checks.values())
        body = {"status": "ready" if ok else "not ready", "service": service, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/asyncapi.json", tags=["operations"], summary="The topics, as AsyncAPI 3")
    async def asyncapi() -> dict[str, Any]:
        from lorag_core.contracts.asyncapi import asyncapi_document

        return asyncapi_document()

    return app


async def service_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the caller presents the service token."""
    expected: str = request.app.state.service_token
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            401,
            "this API is for lorag services: send Authorization: Bearer $LORAG_SERVICE_TOKEN",
            {"WWW-Authenticate": "Bearer"},
        )


def protected(router: APIRouter) -> dict[str, Any]:
    """Keyword arguments for `include_router` that demand the service token on every route."""
    return {
        "router": router,
        "dependencies": [Depends(service_caller)],
        "responses": {401: {"description": "Missing or wrong service token"}},
    }


OwnerHeader = Annotated[
    str,
    Header(
        alias="X-Lorag-Owner",
        pattern=OWNER_PATTERN,
        description="The owner (tenant) the call is made for; its things only are visible.",
    ),
]


def invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    """A 422 about one field, in the shape FastAPI gives malformed requests (`detail[].loc`)."""
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])


class RefuseNul:
    """422 for a NUL character in the path or query: Postgres refuses NUL in text, so such a
    name or cursor could only end as a 500 further in (plain ASGI, so streams pass through)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")
        ):
            detail = [{"loc": ["path"], "msg": "a NUL character is not allowed", "type": "nul"}]
            await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)
            return
        await self.app(scope, receive, send)
