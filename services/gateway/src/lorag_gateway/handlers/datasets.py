"""Dataset uploads into object storage, and which s3:// references an owner may use."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

from lorag_core.storage import ObjectStore, parse_s3_uri, storage_reachable
from lorag_gateway.config import GatewaySettings
from lorag_gateway.errors import Invalid, TooLarge, Unsupported

DATASETS_BUCKET = "lorag-datasets"
UPLOADS = "uploads"
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def safe_name(filename: str) -> str:
    """The last path part of a client's file name, with only safe characters; no traversal."""
    base = PurePosixPath(filename.replace("\\", "/").replace("\x00", "")).name
    cleaned = UNSAFE.sub("_", base).lstrip(".")
    if not cleaned or cleaned in (".", ".."):
        raise Invalid.field(("body", "files"), f"file name {filename!r} has no usable name")
    return cleaned[:128]


def check(upload: Upload, settings: GatewaySettings) -> str:
    """The name an upload is stored under; TooLarge or Unsupported when it may not be."""
    name = safe_name(upload.filename)
    if len(upload.data) > settings.max_upload_bytes:
        raise TooLarge(
            f"{name} is {len(upload.data):,} bytes; uploads may be at most "
            f"{settings.max_upload_bytes:,} bytes (LORAG_GATEWAY_MAX_UPLOAD_BYTES)"
        )
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in settings.upload_suffixes:
        raise Unsupported(
            f"{name}: unsupported file type {suffix or '(none)'!r}; "
            f"datasets may be {', '.join(settings.upload_suffixes)}"
        )
    return name


async def store(
    objects: ObjectStore, settings: GatewaySettings, owner: str, uploads: list[Upload]
) -> dict[str, object]:
    """Store the files under one new prefix of the owner's; the prefix is the dataset's URI."""
    if not uploads:
        raise Invalid.field(("body", "files"), "choose at least one file")
    names = [check(u, settings) for u in uploads]
    prefix = f"{UPLOADS}/{owner}/ds-{uuid.uuid4().hex[:12]}/"
    refs = []
    for name, upload in zip(names, uploads, strict=True):
        with storage_reachable("storing the upload"):  # S3 down: 503, retry the whole upload
            ref = await asyncio.to_thread(
                objects.put_bytes, DATASETS_BUCKET, prefix + name, upload.data
            )
        refs.append(ref)
    files = [
        {"name": n, "size": r.size, "sha256": r.sha256} for n, r in zip(names, refs, strict=True)
    ]
    return {"uri": f"s3://{DATASETS_BUCKET}/{prefix}", "files": files}


def check_reference(uri: str, owner: str, loc: tuple[str | int, ...]) -> str:
    """An s3:// dataset URI the owner may use: not another owner's upload, no '..' parts."""
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as exc:
        raise Invalid.field(loc, str(exc)) from None
    if ".." in key.split("/"):
        raise Invalid.field(loc, "a dataset URI may not contain '..'")
    parts = key.split("/")
    if bucket == DATASETS_BUCKET and parts[0] == UPLOADS and parts[1:2] != [owner]:
        raise Invalid.field(loc, f"no dataset {uri}")  # another owner's upload: not yours
    return uri


async def listing(objects: ObjectStore, owner: str) -> list[dict[str, object]]:
    """The owner's uploaded datasets (one per prefix), newest names last."""
    root = f"{UPLOADS}/{owner}/"
    with storage_reachable("listing datasets"):
        keys = await asyncio.to_thread(lambda: list(objects.list_keys(DATASETS_BUCKET, root)))
    found: dict[str, list[str]] = {}
    for key in keys:
        dataset, _, name = key[len(root) :].partition("/")
        found.setdefault(dataset, []).append(name)
    return [
        {"uri": f"s3://{DATASETS_BUCKET}/{root}{d}/", "files": names}
        for d, names in sorted(found.items())
    ]
