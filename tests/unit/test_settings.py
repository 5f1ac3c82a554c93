import pytest
from pydantic import ValidationError

from lorag_core.settings import LOCAL_POSTGRES_DSN, Settings


def record_subscribers(monkeypatch, host, calls: list | dict) -> None:
    """Record the keywords each of host's subscribers is built with (by topic, into a dict)."""
    build = host.broker.subscriber

    def subscriber(*topics: str, **kw: object):
        if isinstance(calls, dict):
            calls[topics[0]] = kw
        else:
            calls.append(kw)
        return build(*topics, **kw)

    monkeypatch.setattr(host.broker, "subscriber", subscriber)


def test_local_profile_fills_in_the_local_servers_credentials(monkeypatch):
    monkeypatch.delenv("LORAG_POSTGRES_DSN", raising=False)
    monkeypatch.setenv("LORAG_PROFILE", "local")
    assert Settings().postgres_dsn == LOCAL_POSTGRES_DSN


def test_production_needs_every_secret(monkeypatch):
    monkeypatch.setenv("LORAG_PROFILE", "production")
    monkeypatch.delenv("LORAG_POSTGRES_DSN", raising=False)
    with pytest.raises(ValidationError, match="LORAG_POSTGRES_DSN"):
        Settings()


def test_production_refuses_placeholder_secrets(monkeypatch):
    monkeypatch.setenv("LORAG_PROFILE", "production")
    monkeypatch.setenv("LORAG_POSTGRES_DSN", "postgresql://u:p@db/lorag")
    monkeypatch.setenv("LORAG_S3_ACCESS_KEY", "ak")
    monkeypatch.setenv("LORAG_S3_SECRET_KEY", "changeme")
    monkeypatch.setenv("LORAG_SERVICE_TOKEN", "a-real-service-token-77e0")
    with pytest.raises(ValidationError, match="LORAG_S3_SECRET_KEY is a placeholder"):
        Settings()
    monkeypatch.setenv("LORAG_S3_SECRET_KEY", "a-real-secret-8c1f")
    assert Settings().s3.access_key == "ak"


def test_production_needs_a_real_service_token(monkeypatch):
    monkeypatch.setenv("LORAG_PROFILE", "production")
    monkeypatch.setenv("LORAG_POSTGRES_DSN", "postgresql://u:p@db/lorag")
    monkeypatch.setenv("LORAG_S3_ACCESS_KEY", "ak")
    monkeypatch.setenv("LORAG_S3_SECRET_KEY", "a-real-secret-8c1f")
    monkeypatch.delenv("LORAG_SERVICE_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="LORAG_SERVICE_TOKEN"):
        Settings()
    monkeypatch.setenv("LORAG_SERVICE_TOKEN", "lorag-local-service-token")
    with pytest.raises(ValidationError, match="LORAG_SERVICE_TOKEN is a placeholder"):
        Settings()
    monkeypatch.setenv("LORAG_SERVICE_TOKEN", "a-real-service-token-77e0")
    assert Settings().service_secret == "a-real-service-token-77e0"


def test_the_heartbeat_must_fit_three_times_in_the_session(monkeypatch):
    monkeypatch.setenv("LORAG_KAFKA_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("LORAG_KAFKA_HEARTBEAT_INTERVAL_MS", "3000")
    with pytest.raises(ValidationError, match="at most a third"):
        Settings()
    monkeypatch.setenv("LORAG_KAFKA_HEARTBEAT_INTERVAL_MS", "2000")
    assert Settings().kafka.heartbeat_interval_ms == 2000


def test_every_consumer_group_joins_with_the_membership_settings(monkeypatch):
    """The timeouts that bound a frozen member's stall reach each subscriber; static membership
    names the member by its instance id."""
    from lorag_core.messaging.delivery import Delivery
    from lorag_core.service.host import ServiceHost

    monkeypatch.setenv("LORAG_KAFKA_SESSION_TIMEOUT_MS", "7000")
    monkeypatch.setenv("LORAG_KAFKA_STATIC_MEMBERSHIP", "true")
    monkeypatch.setenv("LORAG_INSTANCE_ID", "rag-service-2")
    host = ServiceHost("probe", Settings())
    calls: list[dict] = []
    record_subscribers(monkeypatch, host, calls)
    delivery = Delivery(host.broker, "probe.group", max_message_bytes=1024, max_attempts=1)
    host.at_least_once("job.progress", delivery, batch_size=10)
    host.at_least_once("job.requested", delivery)
    for call in calls:
        assert call["session_timeout_ms"] == 7000 and call["heartbeat_interval_ms"] == 1000
        assert call["group_instance_id"] == "rag-service-2"
        assert call["max_poll_interval_ms"] == Settings().kafka.max_poll_interval_ms
    assert calls[0]["batch"] and calls[0]["max_records"] == 10 and "batch" not in calls[1]


def test_the_trackers_progress_batches_fetch_room_for_a_whole_batch(monkeypatch):
    """Kafka's default fetch (1 MiB of a partition) held about 2,000 progress events: the
    progress subscriber asks for room for PROGRESS_BATCH of them; the other groups keep it."""
    from lorag_core.service.host import ServiceHost
    from lorag_core.tracker import PROGRESS_BATCH, PROGRESS_FETCH_BYTES, register_job_tracker

    host = ServiceHost("probe", Settings())
    calls: dict[str, dict] = {}
    record_subscribers(monkeypatch, host, calls)
    register_job_tracker(host)
    assert set(calls) == {"job.requested", "job.progress", "job.cancel"}
    progress = calls["job.progress"]
    assert progress["max_records"] == PROGRESS_BATCH
    assert progress["max_partition_fetch_bytes"] == PROGRESS_FETCH_BYTES >= PROGRESS_BATCH * 1000
    assert "max_partition_fetch_bytes" not in calls["job.requested"]
    assert "max_partition_fetch_bytes" not in calls["job.cancel"]


def test_a_batch_subscriber_polls_for_the_batch_wait(monkeypatch):
    """A batch subscriber's polls wait LORAG_KAFKA_BATCH_WAIT_MS (500 ms unless set) for
    records; other subscribers take no batch settings."""
    from lorag_core.messaging.delivery import Delivery
    from lorag_core.service.host import ServiceHost

    subscribers: list = []
    for wait in (None, "50"):
        if wait is not None:
            monkeypatch.setenv("LORAG_KAFKA_BATCH_WAIT_MS", wait)
        host = ServiceHost("probe", Settings())
        delivery = Delivery(host.broker, "probe.group", max_message_bytes=1024, max_attempts=1)
        subscribers.append(host.at_least_once("job.progress", delivery, batch_size=10))
        subscribers.append(host.at_least_once("job.requested", delivery))
    assert [getattr(s, "batch_timeout_ms", None) for s in subscribers] == [500, None, 50, None]
    monkeypatch.setenv("LORAG_KAFKA_BATCH_WAIT_MS", "0")
    with pytest.raises(ValidationError, match="batch_wait_ms"):
        Settings()
