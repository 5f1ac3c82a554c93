"""A NUL character in a path or query is a 422 at the door, not a 500 from Postgres further in."""

from fastapi.testclient import TestClient

from lorag_core.service.api import service_app


async def ready() -> dict[str, object]:
    return {}


def test_nul_in_the_path_or_query_is_refused_with_422():
    client = TestClient(service_app("test-service", ready, "token"))
    for url in ("/health%00", "/health?before=job-%00x", "/v1/kbs/a%00b/query"):
        answer = client.get(url)
        assert answer.status_code == 422, url
        assert answer.json()["detail"][0]["msg"] == "a NUL character is not allowed"
    assert client.get("/health?before=job-1").status_code == 200
