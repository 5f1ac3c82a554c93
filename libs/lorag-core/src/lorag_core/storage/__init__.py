"""Object storage through the minio SDK (MinIO, versitygw and AWS S3 all serve)."""

from lorag_core.storage.objects import (
    IntegrityError,
    ObjectRef,
    ObjectStore,
    StorageUnavailable,
    parse_s3_uri,
    storage_reachable,
)

__all__ = [
    "IntegrityError",
    "ObjectRef",
    "ObjectStore",
    "StorageUnavailable",
    "parse_s3_uri",
    "storage_reachable",
]
