"""Object storage round trip with sha256 verification, against the real S3 server."""

import hashlib
import io
import os
import uuid

import pytest

from lorag_core.storage import IntegrityError, ObjectStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def objects(settings) -> ObjectStore:
    store = ObjectStore.from_settings(settings.s3)
    store.ensure_buckets(["lorag-test"])
    store.ensure_buckets(["lorag-test"])  # idempotent
    return store


def test_round_trip_verifies_sha256(objects, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = f"round-trip/{uuid.uuid4().hex}.bin"
    ref = objects.put_bytes("lorag-test", key, data)
    assert ref.sha256 == hashlib.sha256(data).hexdigest() and ref.size == len(data)
    assert objects.get_bytes("lorag-test", key) == data
    copied = objects.get_file("lorag-test", key, tmp_path / "copy.bin")
    assert (tmp_path / "copy.bin").read_bytes() == data and copied.sha256 == ref.sha256


def test_corrupted_object_is_detected_on_read(objects, tmp_path):
    key = f"corrupt/{uuid.uuid4().hex}.bin"
    ref = objects.put_bytes("lorag-test", key, b"the adapter weights" * 1000)
    # Corrupt the stored bytes behind lorag's back, keeping the recorded digest.
    damaged = b"the adapter weightz" * 1000
    objects.client.put_object(
        "lorag-test", key, io.BytesIO(damaged), len(damaged), metadata={"sha256": ref.sha256}
    )
    with pytest.raises(IntegrityError, match="corrupted"):
        objects.get_bytes("lorag-test", key)
    with pytest.raises(IntegrityError):
        objects.get_file("lorag-test", key, tmp_path / "bad.bin")
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.partial").exists()
    with pytest.raises(IntegrityError, match="corrupted"):
        objects.get_bytes("lorag-test", key, expected_sha256=hashlib.sha256(b"other").hexdigest())


def test_an_object_without_a_digest_is_refused_unless_allowed(objects):
    key = f"upstream/{uuid.uuid4().hex}.txt"
    objects.client.put_object("lorag-test", key, io.BytesIO(b"written by others"), 17)
    with pytest.raises(IntegrityError, match="no recorded sha256"):
        objects.get_bytes("lorag-test", key)
    assert objects.get_bytes("lorag-test", key, require_digest=False) == b"written by others"
