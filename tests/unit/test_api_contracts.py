"""Every HTTP API's OpenAPI file matches the code (run `make schemas` after an API change), and
every route of a service API demands the service token and declares what it answers."""

from __future__ import annotations

import json

import pytest

from tests.support.openapi import OPENAPI_DIR, render

RENDERED = render()


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_openapi_files_match_the_code(name):
    path = OPENAPI_DIR / name
    assert path.exists(), f"{path} is missing: run `make schemas`"
    assert path.read_text() == RENDERED[name], f"{path} is stale: run `make schemas`"


@pytest.mark.parametrize("name", [n for n in sorted(RENDERED) if n.endswith("service.openapi.json")
                                  or n.startswith("hybrid")])  # fmt: skip
def test_service_routes_demand_the_token_and_declare_their_answer(name):
    doc = json.loads(RENDERED[name])
    open_paths = {"/health", "/ready", "/asyncapi.json"}
    routes = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items()]
    assert any(p not in open_paths for p, _, _ in routes), f"{name} serves no API of its own"
    for path, method, op in routes:
        if path in open_paths:
            continue
        assert "401" in op["responses"], f"{method.upper()} {path} does not document 401"
        ok = next(code for code in op["responses"] if code.startswith("2"))
        assert op["responses"][ok].get("content"), f"{method.upper()} {path} declares no model"
