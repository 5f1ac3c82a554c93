import pytest
from pydantic import ValidationError

from lorag_core.settings import LOCAL_POSTGRES_DSN, Settings


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
