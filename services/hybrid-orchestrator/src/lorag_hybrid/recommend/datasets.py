"""Which s3:// dataset an owner may have profiled, and its files (enough of them to profile it).

A recommendation reads uploads only, `s3://lorag-datasets/uploads/<owner>/...`: the gateway puts
each upload there, and the owner folder is what proves whose a dataset is.
"""

from __future__ import annotations

from collections.abc import Iterator

from lorag_core.service.api import NotFound, invalid
from lorag_core.storage import ObjectStore, parse_s3_uri

DATASETS_BUCKET = "lorag-datasets"
UPLOADS = "uploads"
LOC = ("body", "dataset")
UPLOAD_HINT = "upload it first (POST /api/datasets, or `lorag recommend --dataset DIR`)"


def dataset_not_found(uri: str) -> NotFound:
    """The same answer for a missing dataset and another owner's."""
    return NotFound(f"no dataset {uri}", code="DATASET_NOT_FOUND", hint=UPLOAD_HINT)


def owned_prefix(uri: str, owner: str) -> tuple[str, str]:
    """The bucket and key prefix of an owner's upload; 422 for a URI that cannot be one,
    404 for another owner's."""
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as exc:
        raise invalid(LOC, str(exc)) from None
    parts = key.split("/")
    if ".." in parts or "." in parts:
        raise invalid(LOC, "a dataset URI may not contain '.' or '..' parts")
    if bucket != DATASETS_BUCKET or parts[0] != UPLOADS or len(parts) < 2 or not parts[1]:
        raise invalid(
            LOC,
            f"recommendations read uploaded datasets: s3://{DATASETS_BUCKET}/{UPLOADS}/<owner>/…",
        )
    if parts[1] != owner:
        raise dataset_not_found(uri)
    return bucket, key


def dataset_keys(objects: ObjectStore, bucket: str, prefix: str) -> list[str]:
    """The object keys of a dataset: the object itself, or the folder's (whole path parts only,
    so `ds-1` does not take in `ds-10`)."""
    folder = prefix.rstrip("/") + "/"
    return [k for k in objects.list_keys(bucket, prefix) if k == prefix or k.startswith(folder)]


def read_files(
    objects: ObjectStore, bucket: str, keys: list[str], budget: int
) -> Iterator[tuple[str, bytes]]:
    """The files' bytes, up to `budget` bytes in all (enough to profile a dataset)."""
    for key in keys:
        data = objects.get_bytes(bucket, key, require_digest=False)
        yield key, data
        budget -= len(data)
        if budget <= 0:
            return
