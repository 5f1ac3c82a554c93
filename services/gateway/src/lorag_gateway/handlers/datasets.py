"""Dataset uploads into object storage, and which s3:// references an owner may use."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath

from lorag_core.domain.datasets import (
    DATASETS_BUCKET,
    UPLOAD_HINT,
    UPLOADS,
    owner_prefix,
    refusal,
)
from lorag_core.storage import ObjectStore, parse_s3_uri, storage_reachable
from lorag_gateway.config import GatewaySettings
from lorag_gateway.errors import Invalid, TooLarge, Unsupported

UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
ARCHIVES = (
    (b"PK\x03\x04", "zip"), (b"PK\x05\x06", "zip"), (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"), (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"), (b"\x28\xb5\x2f\xfd", "zstd"),
)  # fmt: skip


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def safe_name(filename: str) -> str:
    """The last path part of a client's file name, with only safe characters; a name that
    tries to leave its folder ('..' parts, an absolute path, a NUL) is refused, not cleaned."""
    parts = filename.replace("\\", "/").split("/")
    absolute = filename.startswith(("/", "\\")) or DRIVE.match(filename)
    if "\x00" in filename or ".." in parts or absolute:
        raise Invalid.field(
            ("body", "files"),
            f"file name {filename!r} points outside its folder; send plain file names",
            "UPLOAD_NAME_UNSAFE",
        )
    cleaned = UNSAFE.sub("_", parts[-1]).lstrip(".")
    if not cleaned:
        raise Invalid.field(
            ("body", "files"), f"file name {filename!r} has no usable name", "UPLOAD_NAME_EMPTY"
        )
    return cleaned[:128]


def check(upload: Upload, settings: GatewaySettings) -> str:
    """The name an upload is stored under; TooLarge or Unsupported when it may not be."""
    name = safe_name(upload.filename)
    if len(upload.data) > settings.max_upload_bytes:
        raise TooLarge(
            f"{name} is {len(upload.data):,} bytes; uploads may be at most "
            f"{settings.max_upload_bytes:,} bytes (LORAG_GATEWAY_MAX_UPLOAD_BYTES)",
            code="UPLOAD_TOO_LARGE", hint="split the dataset into several uploads",
        )  # fmt: skip
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in settings.upload_suffixes:
        raise Unsupported(
            f"{name}: unsupported file type {suffix or '(none)'!r}; "
            f"datasets may be {', '.join(settings.upload_suffixes)}",
            code="UPLOAD_TYPE", hint="upload the files themselves, one per part",
        )  # fmt: skip
    if (archive := archive_kind(upload.data)) is not None:
        raise Unsupported(
            f"{name} is a {archive} archive: archives are never unpacked (a small one can "
            "expand without bound)", code="UPLOAD_ARCHIVE",
            hint="unpack it yourself and upload the files",
        )  # fmt: skip
    return name


def archive_kind(data: bytes) -> str | None:
    """The kind of compressed archive the bytes start as, whatever the file is called."""
    for magic, kind in ARCHIVES:
        if data.startswith(magic):
            return kind
    if data[:3] == b"BZh" and data[4:10] == b"1AY&SY":
        return "bzip2"
    if data[257:262] == b"ustar":
        return "tar"
    return None


async def store(
    objects: ObjectStore, settings: GatewaySettings, owner: str, uploads: list[Upload]
) -> dict[str, object]:
    """Store the files under one new prefix of the owner's; the prefix is the dataset's URI."""
    if not uploads:
        raise Invalid.field(("body", "files"), "choose at least one file", "UPLOAD_EMPTY")
    if len(uploads) > settings.max_upload_files:
        raise Invalid.field(
            ("body", "files"),
            f"{len(uploads)} files; one upload may have at most {settings.max_upload_files} "
            "(LORAG_GATEWAY_MAX_UPLOAD_FILES)", "UPLOAD_TOO_MANY_FILES",
        )  # fmt: skip
    total = sum(len(u.data) for u in uploads)
    if total > settings.max_upload_bytes:
        raise TooLarge(
            f"the files add up to {total:,} bytes; one upload may be at most "
            f"{settings.max_upload_bytes:,} bytes (LORAG_GATEWAY_MAX_UPLOAD_BYTES)",
            code="UPLOAD_TOO_LARGE", hint="split the dataset into several uploads",
        )  # fmt: skip
    names = [check(u, settings) for u in uploads]
    if len(set(names)) < len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise Invalid.field(
            ("body", "files"), f"two files would be stored as {', '.join(twice)}; rename one",
            "UPLOAD_DUPLICATE_NAME",
        )  # fmt: skip
    prefix = f"{owner_prefix(owner)}ds-{uuid.uuid4().hex[:12]}/"
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
    """An s3:// dataset URI the owner may use: one of its own uploads,
    s3://lorag-datasets/uploads/<owner>/…; Invalid (422, with a code and hint) for anything else.
    Another owner's upload reads "no dataset", like a missing one."""
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as exc:
        raise Invalid.field(loc, f"{exc}; {UPLOAD_HINT}", "DATASET_URI_INVALID") from None
    if (refused := refusal(uri, owner)) is not None:
        raise Invalid.field(loc, refused[1], refused[0])
    if bucket != DATASETS_BUCKET or not key.startswith(owner_prefix(owner)):
        raise Invalid.field(
            loc,
            f"{uri}: jobs read your uploads, s3://{DATASETS_BUCKET}/{owner_prefix(owner)}…; "
            + UPLOAD_HINT,
            "DATASET_NOT_YOURS",
        )
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
