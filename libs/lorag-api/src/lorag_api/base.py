"""Where the services are, and the one HTTP client every typed client is built on."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field, TypeAdapter
from pydantic_settings import BaseSettings, SettingsConfigDict

from lorag_api.errors import Unavailable, from_response

T = TypeVar("T")
OWNER_HEADER = "X-Lorag-Owner"


class ServiceUrls(BaseSettings):
    """Every service's address: a setting, so nothing assumes one host (compose and Kubernetes
    set them to service names)."""

    model_config = SettingsConfigDict(env_prefix="LORAG_", extra="ignore")

    rag_service_url: str = Field(
        default="http://127.0.0.1:8101", description="The rag-service's API."
    )
    lora_service_url: str = Field(
        default="http://127.0.0.1:8112", description="The lora-service's admin API."
    )
    lora_openai_url: str = Field(
        default="http://127.0.0.1:8102/v1", description="The lora-service's OpenAI API."
    )
    hybrid_service_url: str = Field(
        default="http://127.0.0.1:8103", description="The hybrid-orchestrator's API."
    )
    migration_service_url: str = Field(
        default="http://127.0.0.1:8104", description="The migration-service's API."
    )


class ServiceClient:
    """Calls one service's API with the service token, on behalf of an owner when given.

    Errors become the classes of `lorag_api.errors`; a service that cannot be reached is
    `Unavailable` with its address, so the message says which one is down.
    """

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def call(
        self, method: str, path: str, answer: Any, *, owner: str | None = None,
        body: BaseModel | None = None, params: dict[str, Any] | None = None,
    ) -> Any:  # fmt: skip
        """One request; the answer parsed as `answer` (a model or any type pydantic knows)."""
        raw = await self.forward(method, path, owner=owner, body=body, params=params)
        return TypeAdapter(answer).validate_json(raw)

    async def forward(
        self, method: str, path: str, *, owner: str | None = None,
        body: BaseModel | None = None, params: dict[str, Any] | None = None,
    ) -> bytes:  # fmt: skip
        """One request; the successful answer's JSON as the service sent it, unparsed (a proxy
        passes it on as it is)."""
        headers = {OWNER_HEADER: owner} if owner is not None else None
        payload = body.model_dump(mode="json", exclude_none=True) if body is not None else None
        query = {k: v for k, v in (params or {}).items() if v is not None} or None
        try:
            response = await self._http.request(
                method, path, json=payload, params=query, headers=headers
            )
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach {self.base_url}: {type(exc).__name__} {exc}".strip(), status=503,
                hint="is the service running, and its address setting right?",
            ) from exc  # fmt: skip
        if response.status_code >= 400:
            try:
                body_json: Any = response.json()
            except ValueError:
                body_json = response.text
            raise from_response(
                response.status_code, body_json, response.headers.get("Retry-After")
            )
        return response.content


def segment(name: str) -> str:
    """A name as one path segment: a '/' or '?' in it cannot reach another route."""
    return quote(name, safe="")
