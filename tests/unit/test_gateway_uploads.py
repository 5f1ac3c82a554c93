"""Upload names, limits, archives and dataset references, without servers."""

import asyncio
import io
import zipfile

import pytest

from lorag_gateway.config import GatewaySettings
from lorag_gateway.errors import Invalid, TooLarge, Unsupported
from lorag_gateway.handlers.datasets import Upload, check, check_reference, safe_name, store


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("qa.jsonl", "qa.jsonl"), ("notes/a b.csv", "a_b.csv"), (".hidden.md", "hidden.md"),
     ("sub\\dir\\x.txt", "x.txt")],
)  # fmt: skip
def test_file_names_keep_only_their_safe_last_part(raw, safe):
    assert safe_name(raw) == safe


@pytest.mark.parametrize(
    "raw",
    ["../../etc/qa.jsonl", "..\\..\\win\\a.csv", "/abs/qa.md", "\\\\host\\share\\a.md",
     "C:\\Users\\a.md", "ok.txt\x00.exe", "a/../../b.md"],
)  # fmt: skip
def test_names_that_leave_their_folder_are_refused(raw):
    with pytest.raises(Invalid) as refused:
        safe_name(raw)
    assert refused.value.errors[0]["type"] == "UPLOAD_NAME_UNSAFE"


@pytest.mark.parametrize("raw", [".", "", "///", "...."])
def test_names_without_a_file_are_refused(raw):
    with pytest.raises(Invalid):
        safe_name(raw)


def test_size_and_type_limits():
    settings = GatewaySettings(max_upload_bytes=10)
    assert check(Upload("a.jsonl", b"x" * 10), settings) == "a.jsonl"
    with pytest.raises(TooLarge, match="at most 10") as big:
        check(Upload("a.jsonl", b"x" * 11), settings)
    assert big.value.code == "UPLOAD_TOO_LARGE" and big.value.hint
    with pytest.raises(Unsupported, match=r"\.exe") as kind:
        check(Upload("a.exe", b"x"), settings)
    assert kind.value.code == "UPLOAD_TYPE"


def zip_bomb() -> bytes:
    """A small zip that expands to 50 MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.txt", b"\0" * 50_000_000)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["bomb.zip", "bomb.jsonl", "bomb.txt"])
def test_archives_are_refused_whatever_they_are_called(name):
    with pytest.raises(Unsupported) as refused:
        check(Upload(name, zip_bomb()), GatewaySettings())
    if name != "bomb.zip":  # .zip is not a dataset type to begin with
        assert refused.value.code == "UPLOAD_ARCHIVE" and "unpack" in (refused.value.hint or "")


def test_gzip_is_an_archive_too():
    import gzip

    with pytest.raises(Unsupported, match="gzip"):
        check(Upload("x.jsonl", gzip.compress(b"{}\n" * 100)), GatewaySettings())


class NoStore:
    def put_bytes(self, *_):  # nothing may be stored when a batch is refused
        raise AssertionError("stored a refused upload")


def store_now(uploads, **limits):
    return asyncio.run(store(NoStore(), GatewaySettings(**limits), "alice", uploads))


def test_a_multi_file_upload_is_refused_whole():
    with pytest.raises(Invalid, match="at most 2") as many:
        store_now([Upload(f"{n}.md", b"x") for n in range(3)], max_upload_files=2)
    assert many.value.errors[0]["type"] == "UPLOAD_TOO_MANY_FILES"
    with pytest.raises(TooLarge, match="add up to"):
        store_now([Upload("a.md", b"x" * 6), Upload("b.md", b"x" * 6)], max_upload_bytes=10)
    with pytest.raises(Invalid, match=r"a\.md") as twice:
        store_now([Upload("x/a.md", b"1"), Upload("y/a.md", b"2")])
    assert twice.value.errors[0]["type"] == "UPLOAD_DUPLICATE_NAME"
    with pytest.raises(Invalid) as traversal:
        store_now([Upload("ok.md", b"1"), Upload("../../bob/x.md", b"2")])
    assert traversal.value.errors[0]["type"] == "UPLOAD_NAME_UNSAFE"
    with pytest.raises(Unsupported):
        store_now([Upload("ok.md", b"1"), Upload("b.jsonl", zip_bomb())])


def test_references_stay_inside_the_owners_uploads():
    own = "s3://lorag-datasets/uploads/alice/ds-1/"
    assert check_reference(own, "alice", ("d",)) == own
    refused = {
        own.replace("alice", "bob"): "DATASET_NOT_FOUND",
        "s3://lorag-datasets/uploads/alice/../bob/x": "DATASET_URI_INVALID",
        "s3://lorag-artifacts/uploads/alice/x": "DATASET_BUCKET_NOT_ALLOWED",
        "s3://lorag-datasets/shared/x/": "DATASET_NOT_YOURS",
        "s3://lorag-datasets/uploads/alicex/ds-1/": "DATASET_NOT_FOUND",
        "file:///etc/passwd": "DATASET_URI_INVALID",
        "http://169.254.169.254/latest": "DATASET_URI_INVALID",
    }
    for uri, code in refused.items():
        with pytest.raises(Invalid) as error:
            check_reference(uri, "alice", ("d",))
        assert error.value.errors[0]["type"] == code, uri
        assert (
            "upload" in error.value.errors[0]["msg"] or "no dataset" in error.value.errors[0]["msg"]
        )


async def test_an_upload_while_the_object_storage_is_down_is_storage_unavailable():
    import urllib3
    from minio import Minio

    from lorag_core.storage import ObjectStore, StorageUnavailable
    from lorag_gateway.handlers.datasets import store
    from lorag_local.stack import free_port

    nobody = Minio(
        f"127.0.0.1:{free_port()}", access_key="a", secret_key="b", secure=False,
        http_client=urllib3.PoolManager(retries=urllib3.Retry(total=0)),
    )  # fmt: skip
    with pytest.raises(StorageUnavailable, match="storing the upload"):
        await store(ObjectStore(nobody), GatewaySettings(), "alice", [Upload("a.md", b"x")])
