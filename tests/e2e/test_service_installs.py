"""Each service (and the CLI) installs alone and its entry point imports there.

`uv sync --frozen --no-dev --package NAME` into a fresh environment installs that package and
what it declares, nothing else of the workspace, exactly as the image build does
(deploy/docker/Dockerfile). Importing the entry point module in that environment fails on any
import the package does not declare (or that reaches into a service it may not depend on).
Packages that must stay light are also checked for the model and vector-store libraries.

Each service is then started from its own environment against the real Kafka, Postgres and
S3, from a folder of its own, and must report ready.

uv hard-links from its cache, so an install takes a second or two once the cache is warm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")

# package -> its folder (the entry point comes from its [project.scripts])
PACKAGES = {
    "lorag-rag-service": "services/rag-service",
    "lorag-lora-service": "services/lora-service",
    "lorag-hybrid-orchestrator": "services/hybrid-orchestrator",
    "lorag-migration-service": "services/migration-service",
    "lorag-gateway": "services/gateway",
    "lorag-cli": "libs/lorag-cli",
}

MODEL_LIBRARIES = ("torch", "transformers", "sentence_transformers", "chromadb")
# Modules a package's environment must not hold (PRODUCT.md "Boundaries": the gateway and the
# CLI never load a model; only the rag-service reads Chroma; only the lora-service loads models).
MUST_NOT_HOLD = {
    "lorag-gateway": MODEL_LIBRARIES,
    "lorag-migration-service": MODEL_LIBRARIES,
    "lorag-cli": MODEL_LIBRARIES,
    "lorag-hybrid-orchestrator": ("sentence_transformers", "chromadb"),
    "lorag-lora-service": ("sentence_transformers", "chromadb"),
}

PROBE = """
import importlib, importlib.util, json, sys
module, attribute, forbidden = sys.argv[1], sys.argv[2], sys.argv[3:]
getattr(importlib.import_module(module), attribute)
print(json.dumps([name for name in forbidden if importlib.util.find_spec(name) is not None]))
"""


def entry_point(package: str) -> tuple[str, str]:
    """(module, attribute) of the package's console script."""
    project = tomllib.loads((ROOT / PACKAGES[package] / "pyproject.toml").read_text())
    scripts = project["project"]["scripts"]
    assert len(scripts) == 1, f"{package}: expected one console script, found {sorted(scripts)}"
    module, _, attribute = next(iter(scripts.values())).partition(":")
    return module, attribute


class Environments(dict[str, Path]):
    """package -> the python of a fresh environment holding that package alone, made on use."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, package: str) -> Path:
        python = install_alone(package, self.root / package)
        self[package] = python
        return python


@pytest.fixture(scope="module")
def environments(tmp_path_factory: pytest.TempPathFactory) -> Environments:
    assert Path(UV).exists(), "uv is not installed: `make test` installs it"
    return Environments(tmp_path_factory.mktemp("installs"))


def install_alone(package: str, where: Path) -> Path:
    """Sync `package` and its declared dependencies only into `where`; its python."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_NO_SYNC")}
    env["UV_PROJECT_ENVIRONMENT"] = str(where)
    done = subprocess.run(
        [UV, "sync", "--frozen", "--no-dev", "--package", package],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"uv sync --package {package} failed:\n{done.stderr[-4000:]}"
    return where / "bin" / "python"


def probe(python: Path, package: str) -> list[str]:
    """Import the entry point in `python`; the forbidden modules that environment holds."""
    module, attribute = entry_point(package)
    done = subprocess.run(
        # -I: no user site, no PYTHONPATH, no current folder: only what was installed counts
        [str(python), "-I", "-c", PROBE, module, attribute, *MUST_NOT_HOLD.get(package, ())],
        cwd=python.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")},
    )
    assert done.returncode == 0, (
        f"{package} installed alone cannot import {module}:{attribute}:\n{done.stderr[-4000:]}"
    )
    held: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return held


@pytest.mark.parametrize("package", list(PACKAGES))
def test_entry_point_imports_when_installed_alone(package: str, environments: Environments) -> None:
    probe(environments[package], package)


@pytest.mark.parametrize("package", list(MUST_NOT_HOLD))
def test_installed_alone_holds_no_model_libraries(package: str, environments: Environments) -> None:
    held = probe(environments[package], package)
    assert held == [], f"{package} installed alone holds {held}"


def test_every_service_is_covered() -> None:
    services = {
        tomllib.loads(path.read_text())["project"]["name"]
        for path in ROOT.glob("services/*/pyproject.toml")
    }
    assert services <= set(PACKAGES)


SERVICE_MODULES = {
    "lorag-rag-service": "lorag_rag",
    "lorag-lora-service": "lorag_lora",
    "lorag-hybrid-orchestrator": "lorag_hybrid",
    "lorag-migration-service": "lorag_migration",
    "lorag-gateway": "lorag_gateway",
}


@pytest.mark.parametrize("package", list(SERVICE_MODULES))
def test_each_service_starts_alone(package, environments, settings, logs_dir, tmp_path):
    """Installed alone, run from a folder of its own: it connects and reports ready."""
    from lorag_local.stack import free_port
    from tests.support.processes import start_service

    service = start_service(
        SERVICE_MODULES[package], logs_dir, cwd=tmp_path, python=environments[package],
        LORAG_STATE_DIR=str(tmp_path / "state"), LORAG_GATEWAY_PORT=str(free_port()),
        LORAG_LORA_API_PORT=str(free_port()), LORAG_LORA_MODELS_DIR=str(tmp_path / "models"),
        LORAG_LORA_WORK_DIR=str(tmp_path / "work"), LORAG_HYBRID_WARM_UP="false",
        HF_HUB_OFFLINE="1",
    )  # fmt: skip
    assert service.stop() == 0, service.log()
