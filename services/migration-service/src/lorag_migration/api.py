"""The migration-service's API (service port, service token): convert legacy jobs, follow a
conversion, undo them all. `lorag migrate` is its client."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from lorag_api.migration import Conversion, Convert, RolledBack
from lorag_core.service.api import Responses
from lorag_migration.runs import ConversionRuns

BUSY: Responses = {
    409: {"description": "A conversion or rollback is running (CONVERSION_RUNNING/_BUSY)"}
}


def runs_of(request: Request) -> ConversionRuns:
    runs: ConversionRuns = request.app.state.conversions
    return runs


RunsDep = Annotated[ConversionRuns, Depends(runs_of)]
router = APIRouter(prefix="/v1/conversions", tags=["conversions"])


@router.post(
    "", response_model=Conversion, responses={202: {"model": Conversion}, **BUSY},
    summary="Convert legacy jobs (a dry run reports at once; a real run is a job)",
)  # fmt: skip
async def convert(body: Convert, runs: RunsDep, response: Response) -> Conversion:
    if body.dry_run:
        return await runs.dry_run(body.batch_size)
    response.status_code = 202
    return await runs.start(body.batch_size)


@router.post(
    "/rollback", response_model=RolledBack, responses=BUSY,
    summary="Undo every conversion: legacy rows as audited, converted jobs gone",
)  # fmt: skip
async def rollback(runs: RunsDep) -> RolledBack:
    return await runs.rollback()


@router.get("/{job_id}", response_model=Conversion,
            responses={404: {"description": "Not a recent run of this process"}},
            summary="A real run's state, and its report once it ended")  # fmt: skip
async def show(job_id: str, runs: RunsDep) -> Conversion:
    return runs.get(job_id)
