"""Put and get objects with their sha256 recorded on write and verified on read."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as TransportError

from lorag_core.settings import S3Settings

SHA256_META = "sha256"  # stored as the x-amz-meta-sha256 header
CHUNK = 1024 * 1024


class IntegrityError(RuntimeError):
    """An object's bytes do not match the sha256 recorded for it: it is corrupted."""


class StorageUnavailable(ConnectionError):
    """The object storage could not be reached (down, restarting): worth retrying later."""


@contextmanager
def storage_reachable(doing: str) -> Iterator[None]:
    """Turn a transport failure (after minio's own retries) into StorageUnavailable."""
    try:
        yield
    except (TransportError, ConnectionError) as exc:
        raise StorageUnavailable(
            f"object storage unreachable while {doing} ({type(exc).__name__})"
        ) from exc


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    sha256: str
    size: int

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/key' -> ('bucket', 'key'); ValueError for anything else."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, key


class ObjectStore:
    """A thin, verifying layer over one S3 endpoint."""

    def __init__(self, client: Minio) -> None:
        self.client = client

    @classmethod
    def from_settings(cls, settings: S3Settings) -> ObjectStore:
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        return cls(
            Minio(
                settings.endpoint,
                access_key=settings.access_key,
                secret_key=secret,
                secure=settings.secure,
                region=settings.region,
            )
        )

    def ensure_buckets(self, buckets: Iterable[str]) -> None:
        """Create the buckets that do not exist yet."""
        for bucket in buckets:
            if not self.client.bucket_exists(bucket):
                try:
                    self.client.make_bucket(bucket)
                except S3Error as exc:  # another replica made it in between
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

    def put_bytes(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> ObjectRef:
        """Store bytes with their sha256 in the object's metadata."""
        digest = hashlib.sha256(data).hexdigest()
        self.client.put_object(
            bucket,
            key,
            io.BytesIO(data),
            len(data),
            content_type=content_type,
            metadata={SHA256_META: digest},
        )
        return ObjectRef(bucket, key, digest, len(data))

    def put_file(self, bucket: str, key: str, path: Path) -> ObjectRef:
        """Store a file with its sha256, read once to hash and once to upload."""
        digest = _sha256_of(_read_chunks(path))
        size = path.stat().st_size
        self.client.fput_object(bucket, key, str(path), metadata={SHA256_META: digest})
        return ObjectRef(bucket, key, digest, size)

    def get_bytes(
        self,
        bucket: str,
        key: str,
        expected_sha256: str | None = None,
        *,
        require_digest: bool = True,
    ) -> bytes:
        """Read an object and check it against the expected or recorded sha256.

        `require_digest=False` accepts objects written by others (upstream datasets) that carry
        no digest: those are read as they are; any digest that exists is still checked.
        """
        response = self.client.get_object(bucket, key)
        try:
            data = response.read()
            recorded = _recorded_sha256(response.headers)
        finally:
            response.close()
            response.release_conn()
        _verify(
            bucket,
            key,
            hashlib.sha256(data).hexdigest(),
            expected_sha256 or recorded,
            require_digest,
        )
        return data

    def get_file(
        self, bucket: str, key: str, path: Path, expected_sha256: str | None = None
    ) -> ObjectRef:
        """Download an object to a file, verifying its sha256 while streaming."""
        response = self.client.get_object(bucket, key)
        hasher, size = hashlib.sha256(), 0
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            recorded = _recorded_sha256(response.headers)
            with partial.open("wb") as out:
                for chunk in response.stream(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        finally:
            response.close()
            response.release_conn()
        try:
            _verify(bucket, key, hasher.hexdigest(), expected_sha256 or recorded)
        except IntegrityError:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)  # a reader never sees a half-written or unverified file
        return ObjectRef(bucket, key, hasher.hexdigest(), size)

    def list_keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        for key, _ in self.list_tagged(bucket, prefix):
            yield key

    def list_tagged(self, bucket: str, prefix: str = "") -> Iterator[tuple[str, str | None]]:
        """Each key under the prefix with a tag of its bytes from the listing alone: ETag and
        size ("<etag>/<size>"; None when the server gives no ETag). New bytes under a key get a
        new tag; the same bytes may (a multipart upload's ETag depends on its parts)."""
        for obj in self.client.list_objects(bucket, prefix=prefix, recursive=True):
            if obj.object_name is not None:
                tag = f"{obj.etag.strip(chr(34))}/{obj.size}" if obj.etag else None
                yield obj.object_name, tag

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Remove every object under a prefix; returns how many."""
        keys = list(self.list_keys(bucket, prefix))
        for key in keys:
            self.client.remove_object(bucket, key)
        return len(keys)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.stat_object(bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise
        return True


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _sha256_of(chunks: Iterable[bytes]) -> str:
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return hasher.hexdigest()


def _recorded_sha256(headers) -> str | None:
    return headers.get(f"x-amz-meta-{SHA256_META}")


def _verify(
    bucket: str, key: str, actual: str, expected: str | None, require_digest: bool = True
) -> None:
    if expected is None and not require_digest:
        return
    if expected is None:
        raise IntegrityError(
            f"s3://{bucket}/{key} has no recorded sha256; it was not written by lorag"
        )
    if actual != expected:
        raise IntegrityError(
            f"s3://{bucket}/{key} is corrupted: sha256 {actual[:12]}… does not match the recorded "
            f"{expected[:12]}…; restore it from a backup or rerun the job that wrote it"
        )
