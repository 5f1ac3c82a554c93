"""Which dataset URIs a recommendation may read: an owner's uploads, whole folders only."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError

from lorag_core.service.api import NotFound
from lorag_hybrid.recommend.datasets import dataset_keys, owned_prefix


def test_the_owners_upload_is_read_from_its_prefix():
    uri = "s3://lorag-datasets/uploads/alice/ds-1/"
    assert owned_prefix(uri, "alice") == ("lorag-datasets", "uploads/alice/ds-1/")


def test_another_owners_upload_is_not_found_like_a_missing_one():
    with pytest.raises(NotFound) as refused:
        owned_prefix("s3://lorag-datasets/uploads/bob/ds-1/", "alice")
    assert refused.value.code == "DATASET_NOT_FOUND" and "no dataset" in str(refused.value)


@pytest.mark.parametrize(
    "uri",
    [
        "/home/alice/data",
        "s3://",
        "s3://lorag-artifacts/uploads/alice/x",
        "s3://lorag-datasets/job-1/train.jsonl",
        "s3://lorag-datasets/uploads/",
        "s3://lorag-datasets/uploads/alice/../bob/ds",
    ],
)
def test_uris_that_cannot_be_an_upload_are_malformed(uri):
    with pytest.raises(RequestValidationError) as refused:
        owned_prefix(uri, "alice")
    assert refused.value.errors()[0]["loc"] == ("body", "dataset")


class Listing:
    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    def list_keys(self, bucket: str, prefix: str = ""):
        return (k for k in self.keys if k.startswith(prefix))


def test_a_folder_without_its_slash_does_not_take_in_its_neighbours():
    objects = Listing(["uploads/a/ds-1/x.jsonl", "uploads/a/ds-10/y.jsonl", "uploads/a/ds-1"])
    keys = dataset_keys(objects, "b", "uploads/a/ds-1")  # type: ignore[arg-type]
    assert keys == ["uploads/a/ds-1/x.jsonl", "uploads/a/ds-1"]
