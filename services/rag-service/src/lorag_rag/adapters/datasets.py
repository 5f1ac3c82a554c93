"""Listing and reading dataset files from object storage or an allowed local folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lorag_core.storage import ObjectStore
from lorag_core.storage.objects import IntegrityError
from lorag_rag.domain.documents import BadFile, DatasetError
from lorag_rag.domain.locations import LocalLocation, Location, S3Location, locate


@dataclass(frozen=True)
class DatasetFile:
    """One file: its name relative to the dataset (stable across uploads) and where it is."""

    name: str
    location: Location
    # The object store's tag of its bytes from the listing (`ObjectStore.list_tagged`); None
    # for a local file. A manifest entry with the same tag is the same bytes, unread.
    tag: str | None = None


class DatasetReader:
    """Reads what a dataset URI names, refusing schemes and paths that are not allowed."""

    def __init__(self, objects: ObjectStore, allowed_roots: tuple[Path, ...]) -> None:
        self.objects, self.allowed_roots = objects, allowed_roots

    def locate(self, uri: str) -> Location:
        return locate(uri, self.allowed_roots)

    def list_files(self, uri: str) -> list[DatasetFile]:
        """Every file under the URI, sorted; DATASET_NOT_FOUND when there are none."""
        where = self.locate(uri)
        if isinstance(where, S3Location):
            listed = sorted(self.objects.list_tagged(where.bucket, where.prefix))
            files = [
                DatasetFile(_relative(k, where.prefix), S3Location(where.bucket, k), tag)
                for k, tag in listed
                if not k.endswith("/")
            ]
        elif where.path.is_file():
            files = [DatasetFile(where.path.name, where)]
        elif where.path.is_dir():
            paths = sorted(p for p in where.path.rglob("*") if p.is_file())
            files = [
                DatasetFile(p.relative_to(where.path).as_posix(), LocalLocation(p)) for p in paths
            ]
        else:
            files = []
        if not files:
            raise DatasetError("DATASET_NOT_FOUND", f"{uri!r} holds no files")
        return files

    def read(self, file: DatasetFile) -> bytes:
        where = file.location
        if isinstance(where, LocalLocation):
            return where.path.read_bytes()
        try:
            # Upstream systems may write datasets without lorag's digest: read those as they are.
            return self.objects.get_bytes(where.bucket, where.prefix, require_digest=False)
        except IntegrityError as exc:
            raise BadFile(file.name, "FILE_CORRUPTED", str(exc)) from None


def _relative(key: str, prefix: str) -> str:
    """Name of a key inside the dataset: the file name when the URI named the file itself."""
    if key == prefix:
        return PurePosixPath(key).name
    return key[len(prefix) :].lstrip("/")
