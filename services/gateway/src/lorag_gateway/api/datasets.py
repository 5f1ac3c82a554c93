"""/api/datasets: upload dataset files (multipart) into object storage; list the caller's."""

from __future__ import annotations

from fastapi import APIRouter, UploadFile

from lorag_gateway.api.models import DatasetListing, UploadedDataset, refusals
from lorag_gateway.auth import OwnerDep
from lorag_gateway.deps import GatewayDep
from lorag_gateway.handlers import datasets

router = APIRouter(prefix="/api/datasets", tags=["datasets"])


@router.post(
    "", status_code=201, summary="Upload dataset files; returns the dataset's s3:// URI",
    responses=refusals(403, 413, 415, 503),  # 503: the object storage is down
)  # fmt: skip
async def upload(files: list[UploadFile], owner: OwnerDep, gateway: GatewayDep) -> UploadedDataset:
    limit = gateway.settings.max_upload_bytes  # app.py refuses larger bodies before parsing
    uploads = [
        datasets.Upload(f.filename or "", await f.read(limit + 1)) for f in files
    ]  # reading one byte past the limit is enough to know it is over
    stored = await datasets.store(gateway.objects, gateway.settings, owner, uploads)
    return UploadedDataset.model_validate(stored)


@router.get("", summary="The caller's uploaded datasets", responses=refusals(503))
async def list_datasets(owner: OwnerDep, gateway: GatewayDep) -> list[DatasetListing]:
    found = await datasets.listing(gateway.objects, owner)
    return [DatasetListing.model_validate(d) for d in found]
