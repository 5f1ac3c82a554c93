"""The gateway's own refusals carry a code and a hint, and every route documents its answers."""

from fastapi.testclient import TestClient

from lorag_gateway.app import create_app


class NoGateway:
    class settings:  # stands in for GatewaySettings
        max_upload_bytes = 10


def test_a_405_lists_every_method_of_the_path_with_a_code():
    app = TestClient(create_app(NoGateway()))
    for method, path, allowed in (
        ("OPTIONS", "/api/jobs", "GET, POST"), ("PUT", "/api/datasets", "GET, POST"),
        ("DELETE", "/api/jobs/job-1", "GET"),
    ):  # fmt: skip
        r = app.request(method, path)
        assert r.status_code == 405 and r.headers["allow"] == allowed, (method, path)
        assert r.json()["code"] == "METHOD_NOT_ALLOWED" and r.json()["hint"]


def test_every_route_declares_a_response_model_and_its_refusals():
    spec = create_app(NoGateway()).openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            answers = operation["responses"]
            success = next(code for code in answers if code.startswith("2"))
            content = answers[success].get("content", {})
            schema = next(iter(content.values()), {}).get("schema")
            assert schema, f"{method} {path}: no response model"
            assert schema != {}, f"{method} {path}: an empty response schema"
            assert {"400", "401", "422", "429"} <= answers.keys(), (method, path)
            for code, answer in answers.items():
                if code.startswith(("4", "5")) and code not in ("422",):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, code)
