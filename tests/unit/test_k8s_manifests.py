"""Every overlay of deploy/k8s, rendered, is valid Kubernetes 1.33 and KEDA, and does what the
README says: scaling, roles, GPUs, migrations once, writable folders, and the network policies.

Rendering: tests/support/kustomize.py (kustomize's subset that deploy/k8s uses; CI has no
kubectl). Where kubectl is installed, its `kubectl kustomize` must render the same objects.
Kubernetes objects are checked by kubernetes-validate (offline schemas) in strict mode, KEDA's
against the openAPIV3Schema of its CRDs (deploy/k8s/crds, from KEDA v2.17.0), made strict the
way the API server's strict field validation is: unknown fields are errors.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import re
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from lorag_core.settings import Settings
from lorag_lora.config import LoraSettings
from tests.support.kustomize import render
from tests.support.manifests import LOOPBACK, strings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.33.0"
NAMESPACE = "lorag"
Doc = dict[str, Any]

# The lora roles and the other services' Deployments.
LORA_ROLES = {"lora-trainer", "lora-server"}
# Connections between lorag pods that the network policies must allow: (from, to, port). Every
# other port a lorag container declares must be closed to every other lorag pod.
ALLOWED = {
    ("gateway", "rag-service", 8101),
    ("gateway", "lora-server", 8112),
    ("gateway", "hybrid-orchestrator", 8103),
    ("hybrid-orchestrator", "rag-service", 8101),
    ("hybrid-orchestrator", "lora-server", 8112),
    ("hybrid-orchestrator", "lora-server", 8102),
    ("rag-service", "lora-server", 8102),
}
SERVERS = {9092: "Kafka", 5432: "Postgres", 9000: "S3", 4318: "the OTLP collector"}
CHROMA = 8000
HTTPS = 443  # the hosted LLM (rag-service), the model hub (lora roles)
WRITABLE_SETTINGS = (
    "LORAG_STATE_DIR",
    "HF_HOME",
    "XDG_CACHE_HOME",
    "LORAG_LORA_MODELS_DIR",
    "LORAG_LORA_WORK_DIR",
)


@functools.cache
def _rendered(overlay: str) -> tuple[Doc, ...]:
    return tuple(render(K8S / "overlays" / overlay))


def rendered(overlay: str) -> list[Doc]:
    """A fresh copy of the overlay's objects (tests may change them)."""
    return copy.deepcopy(list(_rendered(overlay)))


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[Doc]) -> dict[str, Doc]:
    """Workload name -> its pod template (Deployments and Jobs)."""
    return {
        d["metadata"]["name"]: d["spec"]["template"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }


def env_of(container: Doc, docs: list[Doc]) -> dict[str, str]:
    """A container's environment as the pod sees it: its ConfigMap and Secret, then `env`."""
    seen: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            seen.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            seen.update(find(docs, "Secret", source["secretRef"]["name"])["stringData"])
    seen.update({e["name"]: e.get("value", "") for e in container.get("env", [])})
    return seen


# ------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------


def test_there_are_cpu_and_gpu_overlays() -> None:
    assert {"cpu", "gpu"} <= set(OVERLAYS)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_kubectl_kustomize(overlay: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    real = [doc for doc in yaml.safe_load_all(out) if doc]

    def key(doc: Doc) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    assert sorted(rendered(overlay), key=key) == sorted(real, key=key)


# ------------------------------------------------------------------------------------------
# Schemas: Kubernetes 1.33 (strict) and KEDA's CRDs
# ------------------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """An openAPIV3Schema as JSON Schema that rejects unknown fields (strict field validation)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


@functools.cache
def crd_schemas() -> dict[tuple[str, str], Doc]:
    """(apiVersion, kind) -> the strict schema of each served version of the CRDs in the repo."""
    found: dict[tuple[str, str], Doc] = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                api = f"{spec['group']}/{version['name']}"
                found[api, spec["names"]["kind"]] = _strict(version["schema"]["openAPIV3Schema"])
    return found


def schema_problems(docs: list[Doc]) -> list[str]:
    """Each object against its schema: KEDA's from its CRD, the rest Kubernetes 1.33 strict."""
    problems: list[str] = []
    for doc in docs:
        where = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        if str(doc.get("apiVersion", "")).startswith("keda.sh/"):
            schema = crd_schemas().get((doc["apiVersion"], doc["kind"]))
            if schema is None:
                problems.append(f"{where}: no KEDA CRD serves {doc['apiVersion']}")
                continue
            errors = jsonschema.Draft4Validator(schema).iter_errors(doc)
            problems += [f"{where}: {'.'.join(map(str, e.path))}: {e.message}" for e in errors]
            extra = set(doc["metadata"]) - {"name", "namespace", "labels", "annotations"}
            if extra:
                problems.append(f"{where}: unexpected metadata {sorted(extra)}")
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except (
            kubernetes_validate.ValidationError,
            kubernetes_validate.SchemaNotFoundError,
            kubernetes_validate.InvalidSchemaError,
        ) as exc:
            problems.append(f"{where}: {str(exc).splitlines()[0]}")
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_matches_its_schema(overlay: str) -> None:
    docs = rendered(overlay)
    assert {d["kind"] for d in docs} >= {"ScaledObject", "TriggerAuthentication", "NetworkPolicy"}
    assert schema_problems(docs) == []


def test_the_crds_are_kedas_and_cover_what_is_used() -> None:
    used = {(d["apiVersion"], d["kind"]) for o in OVERLAYS for d in rendered(o)}
    keda = {key for key in used if key[0].startswith("keda.sh/")}
    assert keda == {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
    }
    assert keda <= set(crd_schemas())


def _schema_mutations() -> list[tuple[str, Callable[[list[Doc]], None], str]]:
    def typo_in_a_deployment(docs: list[Doc]) -> None:
        find(docs, "Deployment", "gateway")["spec"]["template"]["spec"]["nodeSelecter"] = {}

    def quantity_as_list(docs: list[Doc]) -> None:
        container = find(docs, "Deployment", "rag-service")["spec"]["template"]["spec"]
        container["containers"][0]["resources"]["limits"]["memory"] = ["1Gi"]

    def hpa_field_in_keda(docs: list[Doc]) -> None:
        find(docs, "ScaledObject", "rag-service")["spec"]["minReplicas"] = 1

    def number_in_trigger_metadata(docs: list[Doc]) -> None:
        find(docs, "ScaledObject", "rag-service")["spec"]["triggers"][0]["metadata"][
            "targetQueryValue"
        ] = 1

    def unknown_keda_version(docs: list[Doc]) -> None:
        find(docs, "TriggerAuthentication", "lorag-postgres")["apiVersion"] = "keda.sh/v2"

    def auth_without_key(docs: list[Doc]) -> None:
        ref = find(docs, "TriggerAuthentication", "lorag-postgres")["spec"]["secretTargetRef"][0]
        del ref["key"]

    return [
        ("typo in a Deployment", typo_in_a_deployment, "Deployment gateway: Additional prop"),
        ("quantity as a list", quantity_as_list, "Deployment rag-service: "),
        ("HPA field in KEDA", hpa_field_in_keda, "ScaledObject rag-service: spec: Additional"),
        ("number in trigger", number_in_trigger_metadata, "1 is not of type 'string'"),
        ("unknown KEDA version", unknown_keda_version, "no KEDA CRD serves keda.sh/v2"),
        ("auth without key", auth_without_key, "'key' is a required property"),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in _schema_mutations()]
)
def test_schema_checks_catch(mutate: Callable[[list[Doc]], None], expected: str) -> None:
    docs = rendered("gpu")
    mutate(docs)
    problems = schema_problems(docs)
    assert any(expected in p for p in problems), problems


# ------------------------------------------------------------------------------------------
# No loopback address anywhere
# ------------------------------------------------------------------------------------------


def test_no_loopback_address_in_any_manifest() -> None:
    files = [p for p in K8S.rglob("*.yaml") if "crds" not in p.parts]
    assert len(files) > 10
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not LOOPBACK.search(line), f"{path.relative_to(ROOT)}:{number}: {line}"
    for overlay in OVERLAYS:
        for doc in rendered(overlay):
            for where, text in strings(doc):
                assert not LOOPBACK.search(text), f"{overlay} {doc['kind']}{where}: {text}"


# ------------------------------------------------------------------------------------------
# Scaling, roles, GPUs
# ------------------------------------------------------------------------------------------


def test_workers_scale_on_their_backlog_and_none_is_capped_by_partitions() -> None:
    for overlay in OVERLAYS:
        docs = rendered(overlay)
        scaled = {
            so["spec"]["scaleTargetRef"]["name"]: so
            for so in of_kind(docs, "ScaledObject").values()
        }
        assert set(scaled) == {"rag-service", "lora-trainer", "hybrid-orchestrator"}
        hpas = {
            h["spec"]["scaleTargetRef"]["name"]
            for h in of_kind(docs, "HorizontalPodAutoscaler").values()
        }
        assert hpas == {"lora-server", "gateway"}
        for name, so in scaled.items():
            assert so["spec"]["maxReplicaCount"] > 3, f"{name} is still capped as by partitions"
            query = " ".join(so["spec"]["triggers"][0]["metadata"]["query"].split())
            # The work items a worker holds or would claim: every one not done.
            counted = r"SELECT count\(\*\) FROM work_items WHERE service = '[a-z-]+'"
            assert re.fullmatch(counted + r" AND status <> 'done'", query), query


def test_minimum_replicas_per_overlay() -> None:
    def minimums(docs: list[Doc]) -> dict[str, int]:
        found = {
            so["spec"]["scaleTargetRef"]["name"]: so["spec"].get("minReplicaCount", 0)
            for so in of_kind(docs, "ScaledObject").values()
        }
        for hpa in of_kind(docs, "HorizontalPodAutoscaler").values():
            found[hpa["spec"]["scaleTargetRef"]["name"]] = hpa["spec"]["minReplicas"]
        found["migration-service"] = find(docs, "Deployment", "migration-service")["spec"][
            "replicas"
        ]
        return found

    common = {"rag-service": 1, "hybrid-orchestrator": 1, "lora-server": 1, "gateway": 2}
    common["migration-service"] = 1
    assert minimums(rendered("gpu")) == {**common, "lora-trainer": 0}
    assert minimums(rendered("cpu")) == {**common, "lora-trainer": 1}


def test_the_lora_roles() -> None:
    assert {"serve", "train"} <= set(LoraSettings.model_fields)
    docs = rendered("cpu")
    pods = pod_specs(docs)
    trainer = env_of(pods["lora-trainer"]["spec"]["containers"][0], docs)
    server = env_of(pods["lora-server"]["spec"]["containers"][0], docs)
    assert (trainer["LORAG_LORA_SERVE"], trainer.get("LORAG_LORA_TRAIN", "true")) == (
        "false",
        "true",
    )
    assert (server.get("LORAG_LORA_SERVE", "true"), server["LORAG_LORA_TRAIN"]) == ("true", "false")
    # The OpenAI API and the lora-service's API go to the server pods only.
    selector = find(docs, "Service", "lora-service")["spec"]["selector"]
    assert selector.items() <= pods["lora-server"]["metadata"]["labels"].items()
    assert not selector.items() <= pods["lora-trainer"]["metadata"]["labels"].items()
    assert {p["port"] for p in find(docs, "Service", "lora-service")["spec"]["ports"]} == {
        8112,
        8102,
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gpus_only_for_the_lora_roles_of_the_gpu_overlay(overlay: str) -> None:
    docs = rendered(overlay)
    for name, pod in pod_specs(docs).items():
        spec = pod["spec"]
        container = spec["containers"][0]
        gpus = container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
        on_gpu = overlay == "gpu" and name in LORA_ROLES
        assert (gpus == 1) is on_gpu, name
        assert ("nvidia.com/gpu.present" in spec.get("nodeSelector", {})) is on_gpu, name
        tolerated = any(t.get("key") == "nvidia.com/gpu" for t in spec.get("tolerations", []))
        assert tolerated is on_gpu, name
        if name in LORA_ROLES:
            assert env_of(container, docs)["LORAG_LORA_DEVICE"] == ("cuda" if on_gpu else "cpu")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_writes_only_to_its_volumes(overlay: str) -> None:
    docs = rendered(overlay)
    for name, pod in pod_specs(docs).items():
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            where = f"{name}/{container['name']}"
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, where
            mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
            assert "/tmp" in mounts, where
            env = env_of(container, docs)
            for key in WRITABLE_SETTINGS:
                if key in env:
                    inside = any(
                        Path(m) in (Path(env[key]), *Path(env[key]).parents) for m in mounts
                    )
                    assert inside, f"{where}: {key}={env[key]} is on the read-only root"
            if name in LORA_ROLES:
                assert {"HF_HOME", "LORAG_LORA_MODELS_DIR", "LORAG_LORA_WORK_DIR"} <= set(env)
            elif pod["metadata"]["labels"]["app.kubernetes.io/name"] != "lorag-db-upgrade":
                assert {"HF_HOME", "LORAG_STATE_DIR"} <= set(env), where


def test_migrations_run_once_per_release_in_every_image_that_has_some() -> None:
    assert "db_migrate_on_start" in Settings.model_fields
    docs = rendered("cpu")
    assert find(docs, "ConfigMap", "lorag-config")["data"]["LORAG_DB_MIGRATE_ON_START"] == "false"
    job = find(docs, "Job", "lorag-db-upgrade")["spec"]["template"]["spec"]
    runs = job["initContainers"] + job["containers"]
    for container in runs:
        assert container["command"] == ["python", "-m", "lorag_core.db.migrations"]
        assert env_of(container, docs)["LORAG_POSTGRES_DSN"]
    assert importlib.util.find_spec("lorag_core.db.migrations") is not None
    # Each component's migrations are only in its own package: the Job must run in each image.
    with_migrations = {
        path.parent.name
        for path in (ROOT / "services").glob("*/pyproject.toml")
        if "lorag.migrations"
        in tomllib.loads(path.read_text()).get("project", {}).get("entry-points", {})
    }
    images = {c["image"].partition(":")[0].removeprefix("lorag/") for c in runs}
    assert with_migrations and with_migrations <= images


def test_disruption_budgets_and_the_ingress() -> None:
    docs = rendered("gpu")
    pods = pod_specs(docs)
    budgets = of_kind(docs, "PodDisruptionBudget")
    for name in set(of_kind(docs, "Deployment")) - {"migration-service"}:
        labels = pods[name]["metadata"]["labels"]
        covering = [
            b
            for b in budgets.values()
            if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(covering) == 1, name
    # The gateway keeps one pod through a drain, and a drain can proceed (2 replicas at least).
    assert budgets["gateway"]["spec"]["minAvailable"] == 1
    assert find(docs, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"] >= 2
    backend = find(docs, "Ingress", "gateway")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    service = find(docs, "Service", backend["service"]["name"])
    port = next(
        p for p in service["spec"]["ports"] if p["name"] == backend["service"]["port"]["name"]
    )
    assert (service["metadata"]["name"], port["port"]) == ("gateway", 8000)


# ------------------------------------------------------------------------------------------
# Network policies
# ------------------------------------------------------------------------------------------

Endpoint = tuple[str, dict[str, str], dict[str, str]]  # (kind, namespace labels, pod labels)


def lorag_pod(labels: dict[str, str]) -> Endpoint:
    return "pod", {"kubernetes.io/metadata.name": NAMESPACE}, labels


EXTERNAL: Endpoint = ("external", {}, {})
DNS: Endpoint = ("pod", {"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})
INGRESS_CONTROLLER: Endpoint = (
    "pod",
    {"kubernetes.io/metadata.name": "ingress-nginx"},
    {"app.kubernetes.io/name": "ingress-nginx"},
)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if set(selector) - {"matchLabels"}:
        raise AssertionError(f"selector not evaluated here: {selector}")
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


def _peer_matches(peer: dict[str, Any], other: Endpoint) -> bool:
    kind, namespace, labels = other
    if "ipBlock" in peer:
        return kind == "external"  # pods are not addressed by IP blocks here
    if kind != "pod":
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], namespace):
            return False
    elif namespace.get("kubernetes.io/metadata.name") != NAMESPACE:
        return False
    return _selects(peer.get("podSelector", {}), labels)


def _side_allows(
    policies: list[Doc], direction: str, pod: dict[str, str], other: Endpoint, port: int, proto: str
) -> bool:
    """Whether `pod`'s policies let it talk to `other` ("Egress") or hear from it ("Ingress")."""
    kind = "egress" if direction == "Egress" else "ingress"
    peers = "to" if direction == "Egress" else "from"
    selecting = [
        p
        for p in policies
        if direction in p["spec"].get("policyTypes", []) and _selects(p["spec"]["podSelector"], pod)
    ]
    if not selecting:
        return True  # not isolated in this direction
    for policy in selecting:
        for rule in policy["spec"].get(kind, []):
            to_ok = peers not in rule or any(_peer_matches(p, other) for p in rule[peers])
            ports = rule.get("ports")
            port_ok = ports is None or any(
                p.get("port") == port and p.get("protocol", "TCP") == proto for p in ports
            )
            if to_ok and port_ok:
                return True
    return False


def reachable(
    policies: list[Doc], src: Endpoint, dst: Endpoint, port: int, proto: str = "TCP"
) -> bool:
    """A connection from src to dst:port passes src's egress and dst's ingress policies."""

    def ours(end: Endpoint) -> bool:
        return end[0] == "pod" and end[1].get("kubernetes.io/metadata.name") == NAMESPACE

    if ours(src) and not _side_allows(policies, "Egress", src[2], dst, port, proto):
        return False
    return not (ours(dst) and not _side_allows(policies, "Ingress", dst[2], src, port, proto))


def network_problems(docs: list[Doc]) -> list[str]:
    """Every lorag pod pair and port against ALLOWED, and the servers, DNS and the internet."""
    problems: list[str] = []
    policies = list(of_kind(docs, "NetworkPolicy").values())
    pods = {name: lorag_pod(p["metadata"]["labels"]) for name, p in pod_specs(docs).items()}
    declared = {
        name: {
            port["containerPort"] for c in p["spec"]["containers"] for port in c.get("ports", [])
        }
        for name, p in pod_specs(docs).items()
    }
    for src, src_pod in pods.items():
        for dst, dst_pod in pods.items():
            for port in sorted(declared[dst]):
                wanted = (src, dst, port) in ALLOWED
                if reachable(policies, src_pod, dst_pod, port) != wanted:
                    problems.append(
                        f"{src} -> {dst}:{port} should be {'open' if wanted else 'closed'}"
                    )
        checks = [
            (f"{what} ({port})", EXTERNAL, port, "TCP", True) for port, what in SERVERS.items()
        ]
        checks += [
            ("DNS", DNS, 53, "UDP", True),
            ("DNS over TCP", DNS, 53, "TCP", True),
            ("Chroma", EXTERNAL, CHROMA, "TCP", src == "rag-service"),
            ("HTTPS out", EXTERNAL, HTTPS, "TCP", src == "rag-service" or src in LORA_ROLES),
            ("any other port", EXTERNAL, 6379, "TCP", False),
            ("DNS elsewhere", EXTERNAL, 53, "UDP", False),
        ]
        for what, dst_end, port, proto, wanted in checks:
            if reachable(policies, src_pod, dst_end, port, proto) != wanted:
                problems.append(f"{src} -> {what} should be {'open' if wanted else 'closed'}")
        for port in sorted(declared[src]):
            wanted = (src, port) == ("gateway", 8000)
            if reachable(policies, INGRESS_CONTROLLER, src_pod, port) != wanted:
                problems.append(
                    f"ingress controller -> {src}:{port} should be {'open' if wanted else 'closed'}"
                )
    return problems


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_what_each_service_needs(overlay: str) -> None:
    assert network_problems(rendered(overlay)) == []


def _network_mutations() -> list[tuple[str, Callable[[list[Doc]], None], str]]:
    def no_default_deny(docs: list[Doc]) -> None:
        docs.remove(find(docs, "NetworkPolicy", "default-deny"))

    def chroma_for_all(docs: list[Doc]) -> None:
        servers = find(docs, "NetworkPolicy", "lorag-servers")["spec"]["egress"][1]["ports"]
        servers.append({"protocol": "TCP", "port": CHROMA})

    def no_postgres(docs: list[Doc]) -> None:
        servers = find(docs, "NetworkPolicy", "lorag-servers")["spec"]["egress"][1]["ports"]
        servers[:] = [p for p in servers if p["port"] != 5432]

    def forget_gateway_to_hybrid(docs: list[Doc]) -> None:
        egress = find(docs, "NetworkPolicy", "gateway")["spec"]["egress"]
        egress[:] = [r for r in egress if r["ports"][0]["port"] != 8103]

    return [
        ("no default deny", no_default_deny, "controller -> lora-trainer:8112 should be closed"),
        ("chroma for all", chroma_for_all, "gateway -> Chroma should be closed"),
        ("no postgres", no_postgres, "lorag-db-upgrade -> Postgres (5432) should be open"),
        (
            "gateway lost",
            forget_gateway_to_hybrid,
            "gateway -> hybrid-orchestrator:8103 should be open",
        ),
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in _network_mutations()]
)
def test_network_checks_catch(mutate: Callable[[list[Doc]], None], expected: str) -> None:
    docs = rendered("cpu")
    mutate(docs)
    problems = network_problems(docs)
    assert any(expected in p for p in problems), problems
