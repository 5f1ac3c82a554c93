"""Which failures a worker leaves to the job's next attempt instead of failing the job."""

import psycopg
import pytest
from urllib3.exceptions import MaxRetryError

from lorag_api.errors import Invalid, Unavailable
from lorag_core.service.worker import JobFailed, transient
from lorag_core.storage import StorageUnavailable


def caused_by(cause: BaseException) -> Exception:
    try:
        raise RuntimeError("while indexing") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.OperationalError("connection refused"),
        MaxRetryError(None, "/lorag-adapters/a/v1/adapter_model.safetensors"),
        StorageUnavailable("object storage unreachable"),
        ConnectionRefusedError(111, "Connection refused"),
        caused_by(psycopg.OperationalError("server closed the connection")),
        Unavailable("cannot reach http://127.0.0.1:8101: ReadError", status=503),
    ],
    ids=[
        "postgres-stopped",
        "postgres-refused",
        "s3-down",
        "storage",
        "refused",
        "wrapped",
        "service-down",
    ],
)
def test_infrastructure_down_for_a_moment_is_transient(exc):
    assert transient(exc)


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad chunk size"), KeyError("text"), JobFailed("DATASET_INVALID", "line 1"),
     psycopg.errors.UniqueViolation("duplicate key"), caused_by(TypeError("no")),
     Unavailable("boom", status=500), Invalid("chunk_tokens: too small", status=422)],
    ids=["value", "key", "job-failed", "constraint", "wrapped-bug", "service-500", "refused"],
)  # fmt: skip
def test_bugs_and_bad_input_are_not(exc):
    assert not transient(exc)
