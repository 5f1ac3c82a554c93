"""Each service's HTTP API as an OpenAPI file in `libs/lorag-api/openapi/`, so an API change
shows in review like a contract change. `make schemas` writes them; a unit test fails while a
file and the code disagree.

The apps are built the way each service's composition root builds them, without starting
anything: no connection opens until a service runs.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_DIR = ROOT / "libs" / "lorag-api" / "openapi"
SERVICES = {
    "rag-service": "lorag_rag.main",
    "lora-service": "lorag_lora.main",
    "hybrid-orchestrator": "lorag_hybrid.main",
    "migration-service": "lorag_migration.main",
}


def service_openapi(service: str, module: str) -> dict[str, Any]:
    """The API a service serves on its service port, as its composition root wires it."""
    from lorag_core.service.host import ServiceHost
    from lorag_core.settings import Settings

    host = ServiceHost(service, Settings())
    importlib.import_module(module).register(host)
    return host.api.openapi()


def gateway_openapi() -> dict[str, Any]:
    from lorag_gateway.app import create_app
    from lorag_gateway.config import GatewaySettings

    return create_app(SimpleNamespace(settings=GatewaySettings())).openapi()  # type: ignore[arg-type]


def lora_openai_openapi() -> dict[str, Any]:
    from lorag_lora.serving.app import create_app

    return create_app(lambda: None, 64).openapi()


def render() -> dict[str, str]:
    """File name -> OpenAPI text for every HTTP API lorag serves."""
    documents = {name: service_openapi(name, module) for name, module in SERVICES.items()}
    documents["gateway"] = gateway_openapi()
    documents["lora-service-openai"] = lora_openai_openapi()
    return {
        f"{name}.openapi.json": json.dumps(doc, indent=2, sort_keys=True) + "\n"
        for name, doc in documents.items()
    }


def main() -> int:
    OPENAPI_DIR.mkdir(parents=True, exist_ok=True)
    wanted = render()
    for stale in {p.name for p in OPENAPI_DIR.glob("*.json")} - set(wanted):
        (OPENAPI_DIR / stale).unlink()
    for name, text in wanted.items():
        (OPENAPI_DIR / name).write_text(text)
    print(f"wrote {len(wanted)} OpenAPI documents to {OPENAPI_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
