"""The migration-service's API: convert legacy jobs (report, run, undo)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lorag_api.base import ServiceClient, segment


class Convert(BaseModel):
    """Convert every legacy job not converted yet; a dry run only reports what that would do."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(False, description="Report what would change; change nothing.")
    batch_size: int = Field(5000, ge=1, le=100_000, description="Legacy rows per transaction.")


class Unconvertible(BaseModel):
    """A legacy row left where it is, and why (it is tried again by the next run)."""

    legacy_id: str
    type: str
    status: str
    reason: str


class ConversionReport(BaseModel):
    """What a run did, or a dry run would do: the same shape, so the two compare."""

    dry_run: bool
    run_id: str
    batches: int
    already_converted: int = Field(description="Rows converted by earlier runs.")
    converted: int = Field(description="Rows this run converted (or would).")
    by_type: dict[str, int] = Field(description="Converted rows per legacy type.")
    by_status: dict[str, int] = Field(description="Converted rows per legacy status.")
    by_state: dict[str, int] = Field(description="Converted rows per new job state.")
    unconvertible_count: int
    unconvertible: list[Unconvertible]


ConversionState = Literal["RUNNING", "SUCCEEDED", "FAILED"]


class Conversion(BaseModel):
    """A conversion: the job that reports it (a real run), and its report once it ended."""

    job_id: str | None = Field(None, description="The conversion's own job (`lorag jobs show`).")
    state: ConversionState = Field("SUCCEEDED", description="A real run is RUNNING at first.")
    report: ConversionReport | None = Field(None, description="The report, once it ended.")
    error: str | None = Field(None, description="Why a real run failed.")


class RolledBack(BaseModel):
    """What a rollback undid: the state before any conversion is back."""

    progress_deleted: int
    jobs_deleted: int
    legacy_rows_restored: int
    conversions_cleared: int
    audit_rows_cleared: int


class MigrationClient(ServiceClient):
    """Legacy conversion is the migration-service's: it alone writes the legacy tables."""

    async def convert(self, request: Convert) -> Conversion:
        """A dry run's report at once; a real run's job id at once (follow it, then ask again)."""
        return await self.call("POST", "/v1/conversions", Conversion, body=request)

    async def conversion(self, job_id: str) -> Conversion:
        """A real run's state, and its report once it ended."""
        return await self.call("GET", f"/v1/conversions/{segment(job_id)}", Conversion)

    async def rollback(self) -> RolledBack:
        return await self.call("POST", "/v1/conversions/rollback", RolledBack)
