"""Reading a job's datasets from object storage into training examples."""

from __future__ import annotations

from lorag_core.contracts import DatasetRef
from lorag_core.storage import ObjectStore
from lorag_core.storage.objects import IntegrityError, parse_s3_uri
from lorag_lora.domain.datasets import DatasetInvalid, Example, parse_file

MAX_DATASET_BYTES = 512 * 1024 * 1024


class DatasetUnavailable(Exception):
    """A dataset cannot be read; `code` is the job error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def read_examples(objects: ObjectStore, refs: tuple[DatasetRef, ...]) -> list[Example]:
    """Every example of every file under the datasets' s3:// URIs (a file or a prefix)."""
    examples: list[Example] = []
    total = 0
    for ref in refs:
        try:
            bucket, prefix = parse_s3_uri(ref.uri)
        except ValueError:
            raise DatasetUnavailable(
                "DATASET_URI_NOT_ALLOWED",
                f"{ref.uri}: the lora-service reads datasets from s3:// only; "
                "`lorag submit` uploads local files for you",
            ) from None
        keys = sorted(objects.list_keys(bucket, prefix))
        if not keys:
            raise DatasetUnavailable("DATASET_NOT_FOUND", f"nothing found under {ref.uri}")
        for key in keys:
            try:
                data = objects.get_bytes(
                    bucket, key, expected_sha256=ref.sha256, require_digest=False
                )
            except IntegrityError as exc:
                raise DatasetUnavailable("DATASET_CORRUPTED", str(exc)) from None
            total += len(data)
            if total > MAX_DATASET_BYTES:
                raise DatasetUnavailable(
                    "DATASET_TOO_LARGE", f"datasets exceed {MAX_DATASET_BYTES >> 20} MiB"
                )
            examples.extend(parse_file(key.rsplit("/", 1)[-1], data))
    if not examples:
        raise DatasetInvalid("the dataset holds no examples")
    return examples
