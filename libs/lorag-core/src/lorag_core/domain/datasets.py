"""Which dataset URIs a job may read: the datasets bucket only, and there not another owner's.

Uploads are stored as `s3://lorag-datasets/uploads/<owner>/ds-<id>/<file>` (the gateway names
the keys), so the owner folder is what proves whose an upload is. The gateway accepts only the
caller's own uploads; services, which also take jobs from trusted tools that stage data
elsewhere in the bucket, refuse any other bucket and any other owner's upload folder.
"""

from __future__ import annotations

from collections.abc import Iterator

from lorag_core.contracts import JobRequested, RagParameters
from lorag_core.contracts.parameters import HybridParameters

DATASETS_BUCKET = "lorag-datasets"
UPLOADS = "uploads"
SCHEME = "s3://"
UPLOAD_HINT = "upload it first (POST /api/datasets, or `lorag submit --dataset DIR`)"


def owner_prefix(owner: str) -> str:
    """The key prefix of an owner's uploads."""
    return f"{UPLOADS}/{owner}/"


def refusal(uri: str, owner: str) -> tuple[str, str] | None:
    """(code, message) when a job of `owner` may not read `uri`; None when it may.

    Paths without a scheme are left to the service's own allowed roots; another owner's
    upload is refused as not found, like a missing one.
    """
    if "://" not in uri:
        return None
    if not uri.startswith(SCHEME):
        scheme = uri.split("://", 1)[0]
        return "DATASET_SCHEME_NOT_ALLOWED", f"{scheme}:// is not allowed for {uri!r}; use s3://"
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    parts = key.split("/")
    if "." in parts or ".." in parts:
        return "DATASET_URI_INVALID", f"{uri!r}: a dataset URI may not contain '.' or '..' parts"
    if bucket != DATASETS_BUCKET:
        return (
            "DATASET_BUCKET_NOT_ALLOWED",
            f"{uri!r}: datasets are read from s3://{DATASETS_BUCKET}/ only; {UPLOAD_HINT}",
        )
    if parts[0] == UPLOADS and (len(parts) < 2 or parts[1] != owner):
        return "DATASET_NOT_FOUND", f"no dataset {uri}"
    return None


def uris_of(event: JobRequested) -> Iterator[str]:
    """Every URI a job reads: its datasets and any evaluation file its parameters name."""
    yield from (ref.uri for ref in event.datasets)
    params = event.parameters
    rag = params.rag if isinstance(params, HybridParameters) else params
    if isinstance(rag, RagParameters) and rag.eval_file:
        yield rag.eval_file


def job_refusal(event: JobRequested) -> tuple[str, str] | None:
    """The first refusal among the URIs a job reads, or None."""
    for uri in uris_of(event):
        if (found := refusal(uri, event.owner)) is not None:
            return found
    return None
