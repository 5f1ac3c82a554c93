"""Upload names, limits and dataset references, without servers."""

import pytest

from lorag_gateway.config import GatewaySettings
from lorag_gateway.errors import Invalid, TooLarge, Unsupported
from lorag_gateway.handlers.datasets import Upload, check, check_reference, safe_name


@pytest.mark.parametrize(
    ("raw", "safe"),
    [("../../etc/qa.jsonl", "qa.jsonl"), ("..\\..\\win\\a b.csv", "a_b.csv"),
     ("/abs/.hidden.md", "hidden.md"), ("ok.txt\x00.exe", "ok.txt.exe")],
)  # fmt: skip
def test_file_names_lose_their_paths(raw, safe):
    assert safe_name(raw) == safe


@pytest.mark.parametrize("raw", ["..", ".", "", "../", "///"])
def test_names_without_a_file_are_refused(raw):
    with pytest.raises(Invalid):
        safe_name(raw)


def test_size_and_type_limits():
    settings = GatewaySettings(max_upload_bytes=10)
    assert check(Upload("a.jsonl", b"x" * 10), settings) == "a.jsonl"
    with pytest.raises(TooLarge, match="at most 10"):
        check(Upload("a.jsonl", b"x" * 11), settings)
    with pytest.raises(Unsupported, match=r"\.exe"):
        check(Upload("a.exe", b"x"), settings)


def test_references_stay_inside_the_owners_uploads():
    own = "s3://lorag-datasets/uploads/alice/ds-1/"
    assert check_reference(own, "alice", ("d",)) == own
    for uri in (own.replace("alice", "bob"), "s3://b/a/../c", "file:///etc/passwd"):
        with pytest.raises(Invalid):
            check_reference(uri, "bob" if "bob" not in uri else "alice", ("d",))


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
