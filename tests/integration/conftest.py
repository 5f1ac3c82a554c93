import pytest

from tests.support.gateway import start_gateway
from tests.support.processes import start_service


@pytest.fixture(scope="module")
def tracker(settings, logs_dir, tmp_path_factory):
    """A real service process hosting the job tracker, writing its spans to a JSONL file."""
    spans = tmp_path_factory.mktemp("spans") / "tracker-spans.jsonl"
    service = start_service("lorag_migration", logs_dir, LORAG_OTEL_JSONL_PATH=str(spans))
    service.spans_path = spans  # type: ignore[attr-defined]
    yield service
    service.stop()


@pytest.fixture(scope="module")
def gateway(settings, logs_dir):
    """A gateway for `lorag` user commands about jobs (no other service behind it)."""
    running = start_gateway(logs_dir)
    yield running
    running.process.stop()
