"""The deployment files parse and agree with the code: docker-compose.yml, deploy/docker,
deploy/otel, deploy/grafana and the kustomize base in deploy/k8s/base (its overlays, rendered
and checked against the Kubernetes and KEDA schemas: test_k8s_manifests.py).

Each check is a function that returns the problems it finds, so the same check runs against
the real files (no problems expected) and against deliberately broken copies (the problem must
be reported): a check that cannot fail would prove nothing.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from lorag_api.base import ServiceUrls
from lorag_lora.config import LoraSettings
from tests.support.manifests import LOOPBACK

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s" / "base"

# lorag service -> (module run with `python -m`, health port)
SERVICES: dict[str, tuple[str, int]] = {
    "rag-service": ("lorag_rag", 8101),
    "lora-service": ("lorag_lora", 8112),
    "hybrid-orchestrator": ("lorag_hybrid", 8103),
    "migration-service": ("lorag_migration", 8104),
    "gateway": ("lorag_gateway", 8105),
}
SERVERS = {"kafka", "postgres", "minio", "chroma", "otel-collector"}
NEEDED_BY_ALL = {"kafka", "postgres", "minio"}
# Kubernetes Deployment -> the lorag service it runs: the lora-service image runs twice, as a
# trainer (training jobs, no API but its health) and a server (the APIs; the Service's pods).
DEPLOYMENTS = {
    "rag-service": "rag-service",
    "lora-trainer": "lora-service",
    "lora-server": "lora-service",
    "hybrid-orchestrator": "hybrid-orchestrator",
    "migration-service": "migration-service",
    "gateway": "gateway",
}
SERVED_BY = {"lora-service": "lora-server"}  # Service -> its Deployment, where not the same name
# Deployments that run jobs scale on their backlog, the work_items a KEDA ScaledObject counts;
# the others that scale do so on CPU (a HorizontalPodAutoscaler).
BACKLOG_SCALED = {"rag-service", "lora-trainer", "hybrid-orchestrator"}
CPU_SCALED = {"lora-server", "gateway"}
REQUIRED_ENV = (
    "LORAG_KAFKA_BOOTSTRAP_SERVERS",
    "LORAG_POSTGRES_DSN",
    "LORAG_S3_ENDPOINT",
    "LORAG_S3_ACCESS_KEY",
    "LORAG_S3_SECRET_KEY",
    "LORAG_OTEL_ENDPOINT",
)
Resources = dict[str, list[dict[str, Any]]]  # k8s file name -> its documents

LORA_OPENAI_PORT: int = LoraSettings.model_fields["api_port"].default
# Address setting -> (the service it must name, its port). Every ServiceUrls field is here
# (test_every_service_url_setting_is_known), plus the LLM endpoints still read by name.
URL_TARGETS: dict[str, tuple[str, int]] = {
    "LORAG_RAG_SERVICE_URL": ("rag-service", 8101),
    "LORAG_LORA_SERVICE_URL": ("lora-service", 8112),
    "LORAG_LORA_OPENAI_URL": ("lora-service", LORA_OPENAI_PORT),
    "LORAG_HYBRID_SERVICE_URL": ("hybrid-orchestrator", 8103),
    "LORAG_MIGRATION_SERVICE_URL": ("migration-service", 8104),
    "LORAG_LLM_BASE_URL": ("lora-service", LORA_OPENAI_PORT),  # the rag-service's chat LLM
}
# The addresses each service calls (now, or through lorag_api once issue 11's clients land).
NEEDED_URLS: dict[str, tuple[str, ...]] = {
    "rag-service": ("LORAG_LLM_BASE_URL", "LORAG_LORA_OPENAI_URL"),
    "lora-service": (),
    "hybrid-orchestrator": (
        "LORAG_RAG_SERVICE_URL",
        "LORAG_LORA_SERVICE_URL",
        "LORAG_LORA_OPENAI_URL",
    ),
    "migration-service": (),
    "gateway": ("LORAG_RAG_SERVICE_URL", "LORAG_LORA_SERVICE_URL", "LORAG_HYBRID_SERVICE_URL"),
}
# Settings that make an API listen on the container's address, per service (all: the service
# API with health and readiness; the gateway's user API; the lora-service's OpenAI API).
BIND_ALL = {
    **{name: ("LORAG_HEALTH_HOST",) for name in SERVICES},
    "gateway": ("LORAG_HEALTH_HOST", "LORAG_GATEWAY_HOST"),
    "lora-service": ("LORAG_HEALTH_HOST", "LORAG_LORA_API_HOST"),
}
CHROMA_READER = "rag-service"  # the only service that gets Chroma settings


def image_of(name: str) -> str:
    """Each lorag service's own image, without a tag."""
    return f"lorag/{name}"


def loopbacks(where: str, env: dict[str, Any]) -> list[str]:
    """Environment values naming a loopback address: they only work on one host."""
    return [
        f"{where}: {key}={value!r} is a loopback address"
        for key, value in env.items()
        if LOOPBACK.search(str(value))
    ]


def address_problems(
    where: str, name: str, env: dict[str, Any], ports: dict[str, set[int]]
) -> list[str]:
    """One service's environment: the addresses it needs name the right services and ports
    (`ports`: service -> the ports it serves), its APIs bind 0.0.0.0, Chroma only for its
    reader, and the service token is set."""
    problems: list[str] = []
    for key in NEEDED_URLS[name]:
        if not env.get(key):
            problems.append(f"{where}: {key} is not set, and {name} calls it")
    for key, (target, port) in URL_TARGETS.items():
        value = env.get(key)
        if not value:
            continue
        url = urlsplit(str(value))
        if (url.hostname, url.port) != (target, port):
            problems.append(f"{where}: {key}={value!r} should name {target}:{port}")
        elif port not in ports.get(target, set()):
            problems.append(f"{where}: {key} names port {port}, which {target} does not serve")
    for key in BIND_ALL[name]:
        if key == "LORAG_LORA_API_HOST" and str(env.get("LORAG_LORA_SERVE")).lower() == "false":
            continue  # a trainer serves no inference API
        if env.get(key) != "0.0.0.0":
            problems.append(f"{where}: {key} should be 0.0.0.0 in a container")
    chroma = sorted(key for key in env if key.startswith("LORAG_CHROMA_"))
    if name == CHROMA_READER and "LORAG_CHROMA_URL" not in env:
        problems.append(f"{where}: LORAG_CHROMA_URL is not set (a Chroma server)")
    if name != CHROMA_READER and chroma:
        problems.append(f"{where}: only {CHROMA_READER} reads Chroma, but it gets {chroma}")
    if not env.get("LORAG_SERVICE_TOKEN"):
        problems.append(f"{where}: LORAG_SERVICE_TOKEN is not set")
    return problems


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def load_kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())


def load_k8s_resources(kustomization: dict[str, Any]) -> Resources:
    """file name -> its documents, for every resource the kustomization names."""
    return {
        name: [doc for doc in yaml.safe_load_all((K8S_DIR / name).read_text()) if doc]
        for name in kustomization["resources"]
    }


# ------------------------------------------------------------------------------------------
# docker-compose.yml
# ------------------------------------------------------------------------------------------


def module_problems(where: str, command: Any, module: str) -> list[str]:
    """The command must be `python -m MODULE` for the service's own module, and that module
    must be importable and runnable with -m (a renamed package fails here)."""
    if not (isinstance(command, list) and len(command) == 3 and command[:2] == ["python", "-m"]):
        return [f"{where}: command {command!r} is not `python -m MODULE`"]
    named = command[2]
    if importlib.util.find_spec(named) is None:
        return [f"{where}: module {named} is not importable"]
    if importlib.util.find_spec(f"{named}.__main__") is None:
        return [f"{where}: module {named} has no __main__, `python -m {named}` cannot run it"]
    if named != module:
        return [f"{where}: runs {named}, the service's module is {module}"]
    return []


def interpolated(value: Any) -> str:
    """A compose value as the container sees it when the variables are unset (their defaults)."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m[1] or "", str(value))


def compose_problems(compose: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    services = compose.get("services") or {}
    ports = {
        name: {int(str(p).split(":")[-1]) for p in service.get("expose", [])}
        for name, service in services.items()
    }

    for name, service in services.items():
        problems += loopbacks(f"compose {name}", service.get("environment") or {})

    missing = (set(SERVICES) | SERVERS) - set(services)
    if missing:
        problems.append(f"compose lacks services {sorted(missing)}")

    for name, service in services.items():
        check = service.get("healthcheck") or {}
        test = check.get("test")
        if check.get("disable") or not test or test[0] not in ("CMD", "CMD-SHELL"):
            problems.append(f"{name}: no healthcheck")

    for name, (module, port) in SERVICES.items():
        service = services.get(name)
        if service is None:
            continue
        problems += module_problems(f"compose {name}", service.get("command"), module)

        depends = service.get("depends_on")
        if not isinstance(depends, dict):
            # The list form of depends_on only waits for the containers to start.
            problems.append(f"{name}: depends_on must be a mapping with conditions")
            depends = {}
        for dependency, spec in depends.items():
            if (spec or {}).get("condition") != "service_healthy":
                problems.append(f"{name}: depends_on {dependency} is not service_healthy")
        needed = set(NEEDED_BY_ALL)
        if name == "rag-service":
            needed.add("chroma")
        if name != "migration-service":
            needed.add("migration-service")
        if needed - set(depends):
            problems.append(f"{name}: does not wait for {sorted(needed - set(depends))}")

        env = service.get("environment") or {}
        if not isinstance(env, dict):
            problems.append(f"{name}: environment should be a mapping")
            env = {}
        if str(env.get("LORAG_HEALTH_PORT")) != str(port):
            problems.append(f"{name}: LORAG_HEALTH_PORT should be {port}")
        if env.get("LORAG_PROFILE") != "local":
            problems.append(f"{name}: LORAG_PROFILE should be local in compose")
        for key in REQUIRED_ENV:
            if not env.get(key):
                problems.append(f"{name}: {key} is not set")
        seen = {key: interpolated(value) for key, value in env.items()}
        problems += address_problems(f"compose {name}", name, seen, ports)
        token = str(env.get("LORAG_SERVICE_TOKEN", ""))
        if token and not token.startswith("${LORAG_SERVICE_TOKEN"):
            problems.append(f"{name}: LORAG_SERVICE_TOKEN should come from the environment")

        probe = " ".join(map(str, (service.get("healthcheck") or {}).get("test") or []))
        if "/ready" not in probe:
            problems.append(f"{name}: healthcheck does not call /ready")
        if service.get("stop_grace_period") != "35s":
            problems.append(f"{name}: stop_grace_period should be 35s")
        build = service.get("build") or {}
        if build.get("dockerfile") != "deploy/docker/Dockerfile":
            problems.append(f"{name}: not built from deploy/docker/Dockerfile")
        if (build.get("args") or {}).get("SERVICE") != name:
            problems.append(f"{name}: not built with the build argument SERVICE={name}")
        if str(service.get("image", "")).partition(":")[0] != image_of(name):
            problems.append(f"{name}: image should be its own, {image_of(name)}")

    return problems


def test_compose_file_is_consistent() -> None:
    assert compose_problems(load_compose()) == []


def test_each_service_has_its_own_image() -> None:
    services = load_compose()["services"]
    images = [services[name]["image"] for name in SERVICES]
    assert images == [f"{image_of(name)}:local" for name in SERVICES]


def test_every_service_url_setting_is_known() -> None:
    """A new address in lorag_api.ServiceUrls must be given a target here (and so be set)."""
    settings = {f"LORAG_{field.upper()}" for field in ServiceUrls.model_fields}
    assert settings <= set(URL_TARGETS)


def test_health_ports_match_the_code() -> None:
    for name, (module, port) in SERVICES.items():
        main = importlib.import_module(f"{module}.main")
        assert port == main.HEALTH_PORT, f"{name}: {module}.main.HEALTH_PORT changed"


def test_gateway_exposes_its_future_http_port() -> None:
    gateway = load_compose()["services"]["gateway"]
    assert any(str(p).endswith(":8000") for p in gateway.get("ports", []))


def test_compose_paths_exist() -> None:
    """Build contexts, Dockerfiles and bind-mounted config files are where compose looks."""
    for name, service in load_compose()["services"].items():
        build = service.get("build")
        if build:
            context = ROOT / build.get("context", ".")
            assert context.is_dir(), f"{name}: build context {context}"
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: mounts missing {source}"


def test_infrastructure_images() -> None:
    services = load_compose()["services"]

    def image(name: str) -> str:
        build = services[name].get("build") or {}
        return (build.get("args") or {}).get("BASE_IMAGE") or services[name]["image"]

    assert image("kafka").startswith("apache/kafka:")
    assert image("postgres").startswith("postgres:16")
    assert image("minio").startswith("minio/minio")
    assert image("chroma").startswith("chromadb/chroma")
    assert image("otel-collector").startswith("otel/opentelemetry-collector-contrib:")
    assert image("tempo").startswith("grafana/tempo:")
    assert image("grafana").startswith("grafana/grafana:")
    kafka_probe = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-topics.sh" in kafka_probe
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "/minio/health/live" in " ".join(services["minio"]["healthcheck"]["test"])
    assert "/api/v2/heartbeat" in " ".join(services["chroma"]["healthcheck"]["test"])


# ------------------------------------------------------------------------------------------
# Tracing configuration
# ------------------------------------------------------------------------------------------


def test_collector_receives_otlp_and_exports_to_tempo() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "otel" / "collector.yaml").read_text())
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["http"]["endpoint"].endswith(":4318")
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    traces = config["service"]["pipelines"]["traces"]
    assert "batch" in traces["processors"]
    for kind in ("receivers", "processors", "exporters"):
        for component in traces[kind]:
            assert component in config[kind], f"pipeline uses undefined {kind[:-1]} {component}"
    endpoints = [config["exporters"][e]["endpoint"] for e in traces["exporters"]]
    assert any(e.startswith("tempo:") for e in endpoints)
    assert "health_check" in config["service"]["extensions"]


def test_tempo_and_grafana_datasource() -> None:
    tempo = yaml.safe_load((ROOT / "deploy" / "otel" / "tempo.yaml").read_text())
    assert tempo["server"]["http_listen_port"] == 3200
    assert "otlp" in tempo["distributor"]["receivers"]
    provisioning = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"
    sources = [
        source
        for path in provisioning.glob("*.yaml")
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert [s["url"] for s in sources if s["type"] == "tempo"] == ["http://tempo:3200"]


# ------------------------------------------------------------------------------------------
# Image
# ------------------------------------------------------------------------------------------


def test_dockerfile() -> None:
    text = DOCKERFILE.read_text()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["python:3.11-slim", "python:3.11-slim"]
    assert "uv sync --frozen --no-dev" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    # One image per service: the build argument SERVICE picks the package lorag-$SERVICE.
    assert re.search(r"^ARG SERVICE$", text, re.M)
    installs = re.findall(r"uv sync .*--package (\S+)", text)
    assert installs and set(installs) == {'"lorag-${SERVICE}"'}, installs
    accepted = re.search(r"^\s+([\w|-]+)\) ;;", text, re.M)
    assert accepted and set(accepted[1].split("|")) == set(SERVICES)
    for name in SERVICES:
        project = (ROOT / "services" / name / "pyproject.toml").read_text()
        declared = re.search(r'^name = "(.+)"', project, re.M)
        assert declared and declared[1] == f"lorag-{name}", f"lorag-$SERVICE misses {name}"


def test_dockerignore_keeps_local_state_out() -> None:
    entries = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", ".git", ".lorag"):
        assert entry in entries


# ------------------------------------------------------------------------------------------
# Kubernetes
# ------------------------------------------------------------------------------------------


def quantity(value: str | int) -> float:
    """A Kubernetes quantity as a number (bytes or cores)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, f"not a quantity: {value!r}"
    return float(match[1]) * units.get(match[2], 1)


def k8s_problems(kustomization: dict[str, Any], resources: Resources) -> list[str]:
    problems: list[str] = []
    docs = [doc for file_docs in resources.values() for doc in file_docs]
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc

    for name in kustomization.get("resources", []):
        if not (K8S_DIR / name).is_file():
            problems.append(f"kustomization names missing {name}")
    for kind in ("Namespace", "ConfigMap", "Secret"):
        if kind not in by_kind:
            problems.append(f"no {kind}")

    deployments = by_kind.get("Deployment", {})
    services = by_kind.get("Service", {})
    config = next(iter(by_kind.get("ConfigMap", {}).values()), {}).get("data") or {}
    secret = next(iter(by_kind.get("Secret", {}).values()), {}).get("stringData") or {}
    problems += loopbacks("k8s ConfigMap", config) + loopbacks("k8s Secret", secret)
    if "LORAG_SERVICE_TOKEN" not in secret:
        problems.append("k8s: LORAG_SERVICE_TOKEN should be in the Secret")
    if "LORAG_SERVICE_TOKEN" in config:
        problems.append("k8s: LORAG_SERVICE_TOKEN is a secret, not ConfigMap data")
    # Service -> the ports it serves (a URL names the Service's port, not the container's)
    served = {
        name: {p["port"] for p in service["spec"].get("ports", [])}
        for name, service in services.items()
    }
    images = {entry.get("name") for entry in kustomization.get("images", [])}
    for service in SERVICES:
        backing = SERVED_BY.get(service, service)
        if service not in services:
            problems.append(f"no Service {service}")
        elif backing in deployments:
            labels = deployments[backing]["spec"]["template"]["metadata"].get("labels", {})
            if not services[service]["spec"]["selector"].items() <= labels.items():
                problems.append(f"{backing}: Service {service} selector does not match the pods")
    for name, service in DEPLOYMENTS.items():
        module, port = SERVICES[service]
        deployment = deployments.get(name)
        if deployment is None:
            problems.append(f"no Deployment {name}")
            continue
        template = deployment["spec"]["template"]
        labels = template["metadata"].get("labels", {})
        selector = deployment["spec"]["selector"]["matchLabels"]
        if not selector.items() <= labels.items():
            problems.append(f"{name}: selector does not match the pod labels")
        for other, spec in services.items():
            if SERVED_BY.get(other, other) != name and spec["spec"]["selector"].items() <= (
                labels.items()
            ):
                problems.append(f"{name}: Service {other} sends its traffic here too")
        containers = template["spec"]["containers"]
        if len(containers) != 1:
            problems.append(f"{name}: expected one container")
            continue
        container = containers[0]
        problems += module_problems(f"k8s {name}", container.get("command"), module)
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        if port not in ports.values():
            problems.append(f"{name}: container does not declare port {port}")
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if env.get("LORAG_HEALTH_PORT") != str(port):
            problems.append(f"{name}: LORAG_HEALTH_PORT should be {port}")
        problems += loopbacks(f"k8s {name}", env)
        sources = container.get("envFrom", [])
        seen: dict[str, Any] = {}
        if {"configMapRef": {"name": "lorag-config"}} in sources:
            seen.update(config)
        if {"secretRef": {"name": "lorag-secrets"}} in sources:
            seen.update(secret)
        seen.update(env)
        problems += address_problems(f"k8s {name}", service, seen, served)
        image = str(container.get("image", ""))
        if image.partition(":")[0] != image_of(service):
            problems.append(f"{name}: image should be its own, {image_of(service)}")
        elif image.partition(":")[0] not in images:
            problems.append(f"{name}: kustomization.yaml does not set the image {image}")
        for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
            http = (container.get(probe) or {}).get("httpGet") or {}
            if http.get("path") != path:
                problems.append(f"{name}: {probe} should GET {path}")
            elif http.get("port") not in (port, *[n for n, p in ports.items() if p == port]):
                problems.append(f"{name}: {probe} probes the wrong port")
        resources_ = container.get("resources") or {}
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources_.get(bound) or {}):
                    problems.append(f"{name}: no {resource} {bound}")
        if template["spec"].get("terminationGracePeriodSeconds", 30) < 30:
            problems.append(f"{name}: less than 30 s to stop gracefully")

    problems += lora_role_problems(deployments)
    migration = deployments.get("migration-service")
    if migration is not None and migration["spec"].get("replicas") != 1:
        problems.append("migration-service: should run exactly 1 replica")
    problems += scaling_problems(by_kind)
    return problems


def lora_role_problems(deployments: dict[str, dict[str, Any]]) -> list[str]:
    """The lora-service's two roles: the trainer serves nothing, the server trains nothing."""
    problems: list[str] = []
    if not {"serve", "train"} <= set(LoraSettings.model_fields):
        problems.append("lorag_lora.config has no serve/train settings for the lora roles")
    for name, setting in (
        ("lora-trainer", "LORAG_LORA_SERVE"),
        ("lora-server", "LORAG_LORA_TRAIN"),
    ):
        if name not in deployments:
            continue
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if str(env.get(setting)).lower() != "false":
            problems.append(f"{name}: {setting} should be false")
    return problems


def scaling_problems(by_kind: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Job runners scale on their backlog (KEDA postgresql), the rest on CPU; never below 1 but
    the trainer; the autoscaler, not the Deployment, owns the replica count."""
    problems: list[str] = []
    deployments = by_kind.get("Deployment", {})
    hpas = {
        hpa["spec"]["scaleTargetRef"]["name"]: hpa
        for hpa in by_kind.get("HorizontalPodAutoscaler", {}).values()
    }
    scaled = {
        so["spec"]["scaleTargetRef"]["name"]: so for so in by_kind.get("ScaledObject", {}).values()
    }
    auths = by_kind.get("TriggerAuthentication", {})
    for name in BACKLOG_SCALED:
        if name in hpas:
            problems.append(f"{name} scales on its backlog (KEDA), not an HPA")
        so = scaled.get(name)
        if so is None:
            problems.append(f"no ScaledObject for {name}")
            continue
        service = DEPLOYMENTS[name]
        triggers = so["spec"].get("triggers", [])
        if [t.get("type") for t in triggers] != ["postgresql"]:
            problems.append(f"ScaledObject {name} should have one postgresql trigger")
            continue
        query = " ".join(triggers[0]["metadata"].get("query", "").split())
        if "FROM work_items" not in query or f"service = '{service}'" not in query:
            problems.append(f"ScaledObject {name} counts work of another service: {query!r}")
        auth = auths.get((triggers[0].get("authenticationRef") or {}).get("name", ""))
        refs = (auth or {}).get("spec", {}).get("secretTargetRef", [])
        if {
            "parameter": "connection",
            "name": "lorag-secrets",
            "key": "LORAG_POSTGRES_DSN",
        } not in (refs):
            problems.append(f"ScaledObject {name}: no connection from the Secret's Postgres DSN")
        low = so["spec"].get("minReplicaCount", 0)
        if name != "lora-trainer" and low < 1:
            problems.append(f"{name}: at 0 replicas its intake stops, so would its backlog")
    for name in CPU_SCALED:
        hpa = hpas.get(name)
        if hpa is None:
            problems.append(f"no HorizontalPodAutoscaler for {name}")
            continue
        metrics = hpa["spec"].get("metrics", [])
        if [m.get("resource", {}).get("name") for m in metrics] != ["cpu"]:
            problems.append(f"HPA {name} should scale on CPU")
        if hpa["spec"].get("minReplicas", 1) < (2 if name == "gateway" else 1):
            problems.append(f"HPA {name}: minReplicas too low")
    for name in BACKLOG_SCALED | CPU_SCALED:
        if name in deployments and "replicas" in deployments[name]["spec"]:
            problems.append(f"{name}: replicas is owned by its autoscaler, leave it out")
    return problems


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load_kustomization()["resources"])
    on_disk = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_k8s_manifests_are_consistent() -> None:
    kustomization = load_kustomization()
    assert k8s_problems(kustomization, load_k8s_resources(kustomization)) == []


def test_lora_service_gets_the_most_memory() -> None:
    kustomization = load_kustomization()
    resources = load_k8s_resources(kustomization)
    limits = {
        name: quantity(_container(resources, name)["resources"]["limits"]["memory"])
        for name in DEPLOYMENTS
    }
    assert max(limits, key=lambda name: limits[name]) == "lora-trainer"
    assert min(limits["lora-trainer"], limits["lora-server"]) > max(
        limit for name, limit in limits.items() if DEPLOYMENTS[name] != "lora-service"
    )


def test_secrets_stay_out_of_the_configmap() -> None:
    resources = load_k8s_resources(load_kustomization())
    docs = [doc for file_docs in resources.values() for doc in file_docs]
    config = next(doc for doc in docs if doc["kind"] == "ConfigMap")["data"]
    secret = next(doc for doc in docs if doc["kind"] == "Secret")["stringData"]
    assert config["LORAG_PROFILE"] == "production"
    secret_keys = {
        "LORAG_POSTGRES_DSN",
        "LORAG_S3_ACCESS_KEY",
        "LORAG_S3_SECRET_KEY",
        "LORAG_SERVICE_TOKEN",
    }
    assert secret_keys <= set(secret)
    assert not secret_keys & set(config)


# ------------------------------------------------------------------------------------------
# The checks themselves catch mistakes
# ------------------------------------------------------------------------------------------


def _compose_mutations() -> list[tuple[str, Callable[[dict[str, Any]], None], str]]:
    def rename_module(c: dict[str, Any]) -> None:
        c["services"]["rag-service"]["command"] = ["python", "-m", "lorag_rag_renamed"]

    def wrong_module(c: dict[str, Any]) -> None:
        c["services"]["lora-service"]["command"] = ["python", "-m", "lorag_rag"]

    def drop_healthcheck(c: dict[str, Any]) -> None:
        del c["services"]["postgres"]["healthcheck"]

    def started_only(c: dict[str, Any]) -> None:
        c["services"]["gateway"]["depends_on"]["kafka"] = {"condition": "service_started"}

    def list_form(c: dict[str, Any]) -> None:
        c["services"]["gateway"]["depends_on"] = ["kafka", "postgres", "minio", "migration-service"]

    def forget_chroma(c: dict[str, Any]) -> None:
        del c["services"]["rag-service"]["depends_on"]["chroma"]

    def forget_migration(c: dict[str, Any]) -> None:
        del c["services"]["hybrid-orchestrator"]["depends_on"]["migration-service"]

    def drop_server(c: dict[str, Any]) -> None:
        del c["services"]["chroma"]

    def loopback_url(c: dict[str, Any]) -> None:
        c["services"]["gateway"]["environment"]["LORAG_RAG_SERVICE_URL"] = "http://127.0.0.1:8101"

    def localhost_kafka(c: dict[str, Any]) -> None:
        c["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"] = (
            "PLAINTEXT://localhost:9092"
        )

    def ipv6_loopback(c: dict[str, Any]) -> None:
        c["services"]["rag-service"]["environment"]["LORAG_LLM_BASE_URL"] = "http://[::1]:8102/v1"

    def forget_url(c: dict[str, Any]) -> None:
        del c["services"]["hybrid-orchestrator"]["environment"]["LORAG_RAG_SERVICE_URL"]

    def wrong_target(c: dict[str, Any]) -> None:
        c["services"]["gateway"]["environment"]["LORAG_HYBRID_SERVICE_URL"] = (
            "http://rag-service:8101"
        )

    def chroma_elsewhere(c: dict[str, Any]) -> None:
        c["services"]["hybrid-orchestrator"]["environment"]["LORAG_CHROMA_URL"] = (
            "http://chroma:8000"
        )

    def gateway_on_loopback(c: dict[str, Any]) -> None:
        del c["services"]["gateway"]["environment"]["LORAG_GATEWAY_HOST"]

    def lora_api_on_loopback(c: dict[str, Any]) -> None:
        del c["services"]["lora-service"]["environment"]["LORAG_LORA_API_HOST"]

    def written_token(c: dict[str, Any]) -> None:
        c["services"]["lora-service"]["environment"]["LORAG_SERVICE_TOKEN"] = "abc"

    def shared_image(c: dict[str, Any]) -> None:
        c["services"]["migration-service"]["image"] = "lorag/gateway:local"

    def wrong_build_arg(c: dict[str, Any]) -> None:
        c["services"]["gateway"]["build"]["args"] = {"SERVICE": "rag-service"}

    return [
        ("renamed module", rename_module, "lorag_rag_renamed is not importable"),
        ("wrong module", wrong_module, "lora-service: runs lorag_rag"),
        ("no healthcheck", drop_healthcheck, "postgres: no healthcheck"),
        ("service_started", started_only, "gateway: depends_on kafka is not service_healthy"),
        ("list depends_on", list_form, "gateway: depends_on must be a mapping"),
        ("rag without chroma", forget_chroma, "rag-service: does not wait for ['chroma']"),
        ("migration not first", forget_migration, "does not wait for ['migration-service']"),
        ("server missing", drop_server, "compose lacks services ['chroma']"),
        ("loopback url", loopback_url, "gateway: LORAG_RAG_SERVICE_URL='http://127.0.0.1:8101'"),
        ("localhost", localhost_kafka, "compose kafka: KAFKA_ADVERTISED_LISTENERS="),
        ("ipv6 loopback", ipv6_loopback, "LORAG_LLM_BASE_URL='http://[::1]:8102/v1' is a loopback"),
        ("url missing", forget_url, "LORAG_RAG_SERVICE_URL is not set, and hybrid-orchestrator"),
        ("wrong target", wrong_target, "LORAG_HYBRID_SERVICE_URL='http://rag-service:8101' should"),
        ("chroma elsewhere", chroma_elsewhere, "only rag-service reads Chroma, but it gets"),
        ("gateway on loopback", gateway_on_loopback, "LORAG_GATEWAY_HOST should be 0.0.0.0"),
        ("lora api on loopback", lora_api_on_loopback, "LORAG_LORA_API_HOST should be 0.0.0.0"),
        (
            "token in the file",
            written_token,
            "LORAG_SERVICE_TOKEN should come from the environment",
        ),
        ("shared image", shared_image, "migration-service: image should be its own"),
        ("wrong build arg", wrong_build_arg, "gateway: not built with the build argument SERVICE"),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(m, e, id=i) for i, m, e in _compose_mutations()],
)
def test_compose_checks_catch(mutate: Callable[[dict[str, Any]], None], expected: str) -> None:
    compose = copy.deepcopy(load_compose())
    mutate(compose)
    problems = compose_problems(compose)
    assert any(expected in p for p in problems), problems


def _container(resources: dict[str, list[dict[str, Any]]], name: str) -> dict[str, Any]:
    """The container of Deployment `name` in loaded k8s resources."""
    for doc in (d for docs in resources.values() for d in docs):
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == name:
            container: dict[str, Any] = doc["spec"]["template"]["spec"]["containers"][0]
            return container
    raise KeyError(name)


def _k8s_mutations() -> list[tuple[str, Callable[[dict[str, Any], Resources], None], str]]:
    def no_readiness(k: dict[str, Any], r: Resources) -> None:
        del _container(r, "gateway")["readinessProbe"]

    def no_liveness(k: dict[str, Any], r: Resources) -> None:
        del _container(r, "rag-service")["livenessProbe"]

    def rename_module(k: dict[str, Any], r: Resources) -> None:
        _container(r, "lora-trainer")["command"] = ["python", "-m", "lorag_lora_renamed"]

    def no_limits(k: dict[str, Any], r: Resources) -> None:
        del _container(r, "hybrid-orchestrator")["resources"]["limits"]

    def missing_file(k: dict[str, Any], r: Resources) -> None:
        k["resources"].append("does-not-exist.yaml")

    def config(r: Resources) -> dict[str, Any]:
        return next(d for docs in r.values() for d in docs if d["kind"] == "ConfigMap")["data"]

    def loopback_config(k: dict[str, Any], r: Resources) -> None:
        config(r)["LORAG_LORA_OPENAI_URL"] = "http://localhost:8102/v1"

    def loopback_env(k: dict[str, Any], r: Resources) -> None:
        _container(r, "rag-service")["env"].append({"name": "X", "value": "127.0.0.1:1"})

    def chroma_for_all(k: dict[str, Any], r: Resources) -> None:
        config(r)["LORAG_CHROMA_URL"] = "http://chroma:8000"

    def forget_url(k: dict[str, Any], r: Resources) -> None:
        del config(r)["LORAG_HYBRID_SERVICE_URL"]

    def wrong_port(k: dict[str, Any], r: Resources) -> None:
        config(r)["LORAG_RAG_SERVICE_URL"] = "http://rag-service:8000"

    def token_in_config(k: dict[str, Any], r: Resources) -> None:
        secret = next(d for docs in r.values() for d in docs if d["kind"] == "Secret")
        config(r)["LORAG_SERVICE_TOKEN"] = secret["stringData"].pop("LORAG_SERVICE_TOKEN")

    def no_secret(k: dict[str, Any], r: Resources) -> None:
        _container(r, "gateway")["envFrom"] = [{"configMapRef": {"name": "lorag-config"}}]

    def gateway_on_loopback(k: dict[str, Any], r: Resources) -> None:
        env = _container(r, "gateway")["env"]
        env[:] = [e for e in env if e["name"] != "LORAG_GATEWAY_HOST"]

    def shared_image(k: dict[str, Any], r: Resources) -> None:
        _container(r, "hybrid-orchestrator")["image"] = "lorag"

    def unset_image(k: dict[str, Any], r: Resources) -> None:
        k["images"] = [i for i in k["images"] if i["name"] != "lorag/lora-service"]

    def of_kind(r: Resources, kind: str, name: str) -> dict[str, Any]:
        docs = (d for docs in r.values() for d in docs)
        return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)

    def cpu_hpa_for_a_worker(k: dict[str, Any], r: Resources) -> None:
        hpa = copy.deepcopy(of_kind(r, "HorizontalPodAutoscaler", "lora-server"))
        hpa["metadata"]["name"] = hpa["spec"]["scaleTargetRef"]["name"] = "rag-service"
        hpa["spec"]["maxReplicas"] = 3
        r["rag-service.yaml"].append(hpa)

    def count_other_work(k: dict[str, Any], r: Resources) -> None:
        trigger = of_kind(r, "ScaledObject", "hybrid-orchestrator")["spec"]["triggers"][0]
        trigger["metadata"]["query"] = trigger["metadata"]["query"].replace("hybrid", "rag")

    def intake_at_zero(k: dict[str, Any], r: Resources) -> None:
        of_kind(r, "ScaledObject", "rag-service")["spec"]["minReplicaCount"] = 0

    def trainer_serves(k: dict[str, Any], r: Resources) -> None:
        env = _container(r, "lora-trainer")["env"]
        env[:] = [e for e in env if e["name"] != "LORAG_LORA_SERVE"]

    def service_to_trainers(k: dict[str, Any], r: Resources) -> None:
        del of_kind(r, "Service", "lora-service")["spec"]["selector"]["app.kubernetes.io/component"]

    def fixed_replicas(k: dict[str, Any], r: Resources) -> None:
        of_kind(r, "Deployment", "lora-trainer")["spec"]["replicas"] = 1

    return [
        ("no readiness probe", no_readiness, "gateway: readinessProbe should GET /ready"),
        ("no liveness probe", no_liveness, "rag-service: livenessProbe should GET /health"),
        ("renamed module", rename_module, "lorag_lora_renamed is not importable"),
        ("no limits", no_limits, "hybrid-orchestrator: no cpu limits"),
        ("missing resource", missing_file, "kustomization names missing does-not-exist.yaml"),
        (
            "loopback in config",
            loopback_config,
            "ConfigMap: LORAG_LORA_OPENAI_URL='http://localhost",
        ),
        ("loopback in env", loopback_env, "k8s rag-service: X='127.0.0.1:1' is a loopback"),
        ("chroma for all", chroma_for_all, "k8s gateway: only rag-service reads Chroma"),
        ("url missing", forget_url, "k8s gateway: LORAG_HYBRID_SERVICE_URL is not set"),
        ("wrong port", wrong_port, "LORAG_RAG_SERVICE_URL='http://rag-service:8000' should name"),
        ("token in config", token_in_config, "LORAG_SERVICE_TOKEN should be in the Secret"),
        ("no secret", no_secret, "k8s gateway: LORAG_SERVICE_TOKEN is not set"),
        ("gateway on loopback", gateway_on_loopback, "LORAG_GATEWAY_HOST should be 0.0.0.0"),
        ("shared image", shared_image, "hybrid-orchestrator: image should be its own"),
        ("image not set", unset_image, "does not set the image lorag/lora-service"),
        ("cpu hpa for a worker", cpu_hpa_for_a_worker, "rag-service scales on its backlog (KEDA)"),
        ("count other work", count_other_work, "ScaledObject hybrid-orchestrator counts work of"),
        ("intake at zero", intake_at_zero, "rag-service: at 0 replicas its intake stops"),
        ("trainer serves", trainer_serves, "lora-trainer: LORAG_LORA_SERVE should be false"),
        ("service to trainers", service_to_trainers, "lora-trainer: Service lora-service sends"),
        ("fixed replicas", fixed_replicas, "lora-trainer: replicas is owned by its autoscaler"),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(m, e, id=i) for i, m, e in _k8s_mutations()],
)
def test_k8s_checks_catch(
    mutate: Callable[[dict[str, Any], Resources], None], expected: str
) -> None:
    kustomization = load_kustomization()
    resources = load_k8s_resources(kustomization)
    mutate(kustomization, resources)
    problems = k8s_problems(kustomization, resources)
    assert any(expected in p for p in problems), problems
