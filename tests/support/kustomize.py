"""Render a kustomization in Python: the subset of kustomize that deploy/k8s uses.

There is no pure-Python kustomize, and CI has no kubectl, so the manifest tests render the
overlays with this: `resources` (files and folders holding a kustomization), `namespace`,
`labels` (metadata only: includeSelectors false), `images` (newName, newTag, digest) and
`patches` given as a `path` to a strategic-merge patch. Strategic merge knows the few merge keys
the overlays rely on (containers and env by name, volumes by name, volumeMounts by mountPath,
ports by containerPort); other lists are replaced, and a null deletes a key, as in kustomize.
Anything else in a kustomization is refused, so a new feature cannot be silently ignored.
Where kubectl is installed, tests compare this renderer's output with `kubectl kustomize`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

Doc = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
# List fields merged item by item (strategic merge), and the key that pairs the items.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
# Kinds whose patches merge lists by the keys above; custom resources (KEDA's) have no schema
# in kustomize, which patches them as JSON merge patches: every list is replaced.
BUILTIN_GROUPS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "autoscaling/v2",
    "networking.k8s.io/v1",
}
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not do, or names a missing file."""


def render(folder: Path) -> list[Doc]:
    """Every object the kustomization in `folder` produces, transformed as kustomize would."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text()) or {}
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{folder}: kustomization fields not rendered here: {sorted(unknown)}")
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        if path.is_dir():
            docs += render(path)
        elif path.is_file():
            docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        else:
            raise KustomizeError(f"{folder}: resource {entry} does not exist")
    for patch in spec.get("patches", []):
        if set(patch) != {"path"}:
            raise KustomizeError(f"{folder}: only `path:` patches are rendered here: {patch}")
        for change in yaml.safe_load_all((folder / patch["path"]).read_text()):
            if change:
                _apply_patch(docs, change, f"{folder}/{patch['path']}")
    for image in spec.get("images", []):
        _set_image(docs, image)
    for label in spec.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise KustomizeError(f"{folder}: labels are only rendered into metadata: {label}")
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def strategic_merge(target: Any, patch: Any, *, merge_lists: bool = True) -> Any:
    """`patch` merged into `target` (a new value): maps key by key, null deletes a key, the
    lists named in MERGE_KEYS item by item (when `merge_lists`), other lists replaced."""
    if not isinstance(patch, dict) or not isinstance(target, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target)
    for key, value in patch.items():
        if isinstance(key, str) and key.startswith("$"):
            raise KustomizeError(f"patch directive {key} is not rendered here")
        if value is None:
            merged.pop(key, None)
        elif merge_lists and key in MERGE_KEYS and isinstance(value, list):
            merged[key] = _merge_list(merged.get(key) or [], value, MERGE_KEYS[key])
        else:
            merged[key] = strategic_merge(merged.get(key), value, merge_lists=merge_lists)
    return merged


def _merge_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    """The patch's items first (merged into their namesakes), then the target's others: the
    order kustomize writes."""
    by_key = {old.get(key): old for old in target}
    merged = [strategic_merge(by_key.get(item.get(key), {}), item) for item in patch]
    patched = {item.get(key) for item in patch}
    return merged + [copy.deepcopy(old) for old in target if old.get(key) not in patched]


def _apply_patch(docs: list[Doc], patch: Doc, where: str) -> None:
    name, kind = patch["metadata"]["name"], patch["kind"]
    for i, doc in enumerate(docs):
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            builtin = doc["apiVersion"] in BUILTIN_GROUPS
            docs[i] = strategic_merge(doc, patch, merge_lists=builtin)
            return
    raise KustomizeError(f"{where}: patches {kind} {name}, which no resource defines")


def _set_image(node: Any, image: Doc) -> None:
    """Rewrite every container image named image['name'] as kustomize's images field does."""
    if isinstance(node, list):
        for item in node:
            _set_image(item, image)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("containers", "initContainers") and isinstance(value, list):
            for container in value:
                container["image"] = _renamed(container.get("image", ""), image)
        _set_image(value, image)


def _renamed(current: str, image: Doc) -> str:
    name, _, digest = current.partition("@")
    repo, tag = name, ""
    if ":" in name.rsplit("/", 1)[-1]:
        repo, _, tag = name.rpartition(":")
    if repo != image["name"]:
        return current
    repo = image.get("newName", repo)
    if "digest" in image:
        return f"{repo}@{image['digest']}"
    tag = image.get("newTag", tag)
    suffix = f"@{digest}" if digest and "newTag" not in image else ""
    return f"{repo}:{tag}{suffix}" if tag else f"{repo}{suffix}"
