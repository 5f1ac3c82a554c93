"""The FastAPI application: the API routers, error mapping, upload limit and the console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from lorag_api import ServiceError, Unauthorized, Unavailable
from lorag_core.contracts.asyncapi import asyncapi_document
from lorag_core.service.api import RefuseNul
from lorag_core.storage import StorageUnavailable
from lorag_gateway.api import catalog, datasets, jobs, minions, recommend, types
from lorag_gateway.api.models import EVERY_ROUTE, Me
from lorag_gateway.auth import ReaderDep
from lorag_gateway.deps import Gateway
from lorag_gateway.errors import Conflict, Forbidden, Invalid, NotFound, TooLarge, Unsupported

STATIC = Path(__file__).parent / "static"
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the files
STATUS = {NotFound: 404, TooLarge: 413, Unsupported: 415, Conflict: 409}
STORAGE_RETRY_AFTER_S = 5


def create_app(gateway: Gateway) -> FastAPI:
    """The gateway's app around an already-built Gateway (tests build one the same way)."""
    app = FastAPI(
        title="lorag gateway", version="1", docs_url="/api/docs",
        openapi_url="/api/openapi.json", redoc_url=None,
    )  # fmt: skip
    app.state.gateway = gateway
    routers = (jobs, types, datasets, recommend, catalog, minions)
    for module in routers:
        app.include_router(module.router, responses=EVERY_ROUTE)
    app.add_middleware(UploadLimit, limit=gateway.settings.max_upload_bytes + MULTIPART_SLACK)
    app.add_middleware(RefuseNul)

    @app.exception_handler(Invalid)
    async def invalid(_: Request, exc: Invalid) -> Response:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> Response:
        return JSONResponse({"detail": str(exc), "code": exc.code, "hint": exc.hint}, 403)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _http_error(app, request, exc)

    for kind, status in STATUS.items():
        app.add_exception_handler(kind, _plain(status))
    app.add_exception_handler(ServiceError, _forwarded)

    @app.exception_handler(StorageUnavailable)
    async def storage_down(_: Request, exc: StorageUnavailable) -> Response:
        # Not the caller's fault and nothing was kept half-done: say so, and when to retry.
        hint = "the object storage is down or restarting; retry in a few seconds"
        body = {"detail": str(exc), "code": "STORAGE_UNAVAILABLE", "hint": hint}
        headers = {"Retry-After": str(STORAGE_RETRY_AFTER_S)}
        return JSONResponse(body, status_code=503, headers=headers)

    @app.get("/api/me", tags=["auth"], summary="Who the token belongs to", responses=EVERY_ROUTE)
    async def me(owner: ReaderDep) -> Me:
        return Me(owner=owner)

    @app.get("/api/asyncapi.json", tags=["contracts"], summary="The topics, as AsyncAPI 3",
             responses=EVERY_ROUTE)  # fmt: skip
    async def topics() -> dict[str, Any]:
        return asyncapi_document()

    @app.get("/", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
HTTP_CODES = {
    400: ("MALFORMED_BODY", "send a UTF-8 JSON body (or multipart for uploads)"),
    405: ("METHOD_NOT_ALLOWED", "the Allow header lists the methods of this path"),
}


def _http_error(app: FastAPI, request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own refusals with a code and a hint; a 405 lists every method of the path
    (Starlette names only the first route's)."""
    code, hint = HTTP_CODES.get(exc.status_code, (None, None))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(
            method for method in METHODS
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                   for route in app.router.routes)
        )  # fmt: skip
    body = {"detail": exc.detail, "code": code, "hint": hint}
    return JSONResponse(body, status_code=exc.status_code, headers=headers or None)


def _plain(status: int) -> Any:
    async def handle(_: Request, exc: Exception) -> Response:
        body = {"detail": str(exc), "code": getattr(exc, "code", None),
                "hint": getattr(exc, "hint", None)}  # fmt: skip
        return JSONResponse(body, status_code=status)

    return handle


async def _forwarded(_: Request, exc: Exception) -> Response:
    """A service's answer passed on: its status, message, code and hint. A service that is
    down, or refused the gateway's own credentials, is the operator's problem, not the
    caller's: 503 and 502, saying which."""
    assert isinstance(exc, ServiceError)
    status = exc.status
    body: dict[str, Any] = {"detail": exc.message, "code": exc.code, "hint": exc.hint}
    if exc.errors:
        body["detail"] = exc.errors  # a 422's field errors, as FastAPI reports its own
    if isinstance(exc, Unauthorized):
        status = 502
        body = {"detail": "the gateway's service token was refused; check LORAG_SERVICE_TOKEN",
                "code": "BAD_SERVICE_TOKEN", "hint": None}  # fmt: skip
    elif isinstance(exc, Unavailable):
        status = 503
    headers = {"Retry-After": str(int(exc.retry_after))} if exc.retry_after else None
    return JSONResponse(body, status_code=status, headers=headers)


class UploadLimit:
    """Refuse an oversized body from its Content-Length, before anything reads it (plain ASGI,
    so streaming responses pass through untouched)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            size = dict(scope["headers"]).get(b"content-length", b"")
            if size.isdigit() and int(size) > self.limit:
                detail = (
                    f"upload too large: {int(size):,} bytes; the limit is "
                    f"{self.limit - MULTIPART_SLACK:,} bytes (LORAG_GATEWAY_MAX_UPLOAD_BYTES)"
                )
                body = {"detail": detail, "code": "UPLOAD_TOO_LARGE",
                        "hint": "split the dataset into several uploads"}  # fmt: skip
                await JSONResponse(body, status_code=413)(scope, receive, send)
                return
        await self.app(scope, receive, send)
