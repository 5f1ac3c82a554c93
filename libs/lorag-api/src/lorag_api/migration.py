"""The migration-service's API: convert legacy jobs (report, run, undo)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lorag_api.base import ServiceClient


class Convert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Report what would change; change nothing.")
    batch_size: int = Field(1000, ge=1, le=100_000, description="Legacy rows per transaction.")


class Conversion(BaseModel):
    """A conversion: the job that reports it (a real run), and its report once it ended."""

    job_id: str | None = Field(None, description="The conversion's own job (`lorag jobs show`).")
    report: dict[str, Any] | None = Field(None, description="The validation report.")


class MigrationClient(ServiceClient):
    async def convert(self, request: Convert) -> Conversion:
        return await self.call("POST", "/v1/conversions", Conversion, body=request)

    async def rollback(self) -> dict[str, Any]:
        return await self.call("POST", "/v1/conversions/rollback", dict[str, Any])
