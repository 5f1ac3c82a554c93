"""Where a dataset may be read from: s3:// URIs, or local paths under the allowed roots only."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from lorag_rag.domain.documents import DatasetError

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str


@dataclass(frozen=True)
class LocalLocation:
    path: Path


Location = S3Location | LocalLocation


def locate(uri: str, allowed_roots: tuple[Path, ...]) -> Location:
    """Check a dataset URI against the allowed schemes and roots before anything is read."""
    match = SCHEME.match(uri)
    if match and match.group(1).lower() != "s3":
        raise DatasetError(
            "DATASET_SCHEME_NOT_ALLOWED",
            f"{match.group(1)}:// is not allowed for {uri!r}; use s3://bucket/key "
            "or a local path under LORAG_RAG_ALLOWED_ROOTS",
        )
    if match:
        bucket, _, prefix = uri[5:].partition("/")
        if not bucket:
            raise DatasetError("DATASET_URI_INVALID", f"{uri!r} names no bucket")
        return S3Location(bucket, prefix)
    # realpath: a symlink or '..' must not lead out of an allowed root
    path = Path(os.path.realpath(uri))
    for root in allowed_roots:
        real_root = Path(os.path.realpath(root))
        if path == real_root or path.is_relative_to(real_root):
            return LocalLocation(path)
    roots = ", ".join(str(r) for r in allowed_roots) or "none configured"
    raise DatasetError(
        "DATASET_PATH_NOT_ALLOWED",
        f"local path {uri!r} is outside the allowed roots ({roots}); upload it with "
        "`lorag submit` (it goes to S3) or add its folder to LORAG_RAG_ALLOWED_ROOTS",
    )
