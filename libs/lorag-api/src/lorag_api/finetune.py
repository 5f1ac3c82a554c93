"""A client of an OpenAI-compatible fine-tuning API (files + fine_tuning.jobs): the lora-service's
own, or a provider's. Failures say whether trying again may help."""

from __future__ import annotations

from typing import Any

import httpx


class ProviderError(Exception):
    """The provider refused or failed; `retryable` when it was down, overloaded or failing."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.retryable, self.status = message, retryable, status


class FineTuneClient:
    """Files and fine-tuning jobs at `base_url` (…/v1), with the provider's API key. `owner`
    goes as X-Lorag-Owner: with the service token, lorag's own API acts for that owner."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, owner: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:  # fmt: skip
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"}
        if owner is not None:
            headers["X-Lorag-Owner"] = owner
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport, headers=headers
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def upload(self, filename: str, data: bytes) -> dict[str, Any]:
        """A training file (chat JSONL), purpose fine-tune."""
        files = {"file": (filename, data, "application/jsonl")}
        return await self._call("POST", "/files", files=files, data={"purpose": "fine-tune"})

    async def create_job(
        self, model: str, training_file: str, *, suffix: str | None = None,
        seed: int | None = None, hyperparameters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"model": model, "training_file": training_file}
        extra = {"suffix": suffix, "seed": seed, "hyperparameters": hyperparameters}
        body |= {k: v for k, v in extra.items() if v is not None}
        return await self._call("POST", "/fine_tuning/jobs", json=body)

    async def job(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/fine_tuning/jobs/{job_id}")

    async def events(self, job_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The job's newest events first."""
        page = await self._call(
            "GET", f"/fine_tuning/jobs/{job_id}/events", params={"limit": limit}
        )
        return list(page.get("data", []))

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/fine_tuning/jobs/{job_id}/cancel")

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ProviderError(
                f"fine-tuning provider at {self.base_url} unreachable: {type(exc).__name__} {exc}",
                retryable=True,
            ) from exc
        if response.status_code >= 400:
            try:
                error = response.json().get("error") or {}
                message = error.get("message") or response.text
            except (ValueError, AttributeError):
                message = response.text
            retryable = response.status_code >= 500 or response.status_code == 429
            raise ProviderError(
                f"fine-tuning provider {method} {path}: {response.status_code} {message}"[:2000],
                retryable=retryable, status=response.status_code,
            )  # fmt: skip
        found: dict[str, Any] = response.json()
        return found
