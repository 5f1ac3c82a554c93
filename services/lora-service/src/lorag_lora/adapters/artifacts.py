"""Adapter folders, checkpoints and fine-tuned models in object storage (blocking; use threads)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from lorag_core.storage import ObjectStore
from lorag_core.storage.objects import IntegrityError, ObjectRef, parse_s3_uri
from lorag_lora.domain.registry import (
    ADAPTERS_BUCKET,
    ARTIFACTS_BUCKET,
    CONFIG_FILE,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    adapter_prefix,
    checkpoint_prefix,
)

LATEST_CHECKPOINT = "latest.json"


class AdapterCorrupted(RuntimeError):
    """The stored adapter does not match the digest recorded for it."""


def store_adapter(objects: ObjectStore, folder: Path, name: str, version: int,
                  manifest: dict[str, Any]) -> ObjectRef:  # fmt: skip
    """Upload weights and config, then the manifest last: a manifest means a complete adapter."""
    prefix = adapter_prefix(name, version)
    weights = objects.put_file(ADAPTERS_BUCKET, prefix + WEIGHTS_FILE, folder / WEIGHTS_FILE)
    objects.put_file(ADAPTERS_BUCKET, prefix + CONFIG_FILE, folder / CONFIG_FILE)
    body = {**manifest, "sha256": weights.sha256, "size_bytes": weights.size}
    objects.put_bytes(
        ADAPTERS_BUCKET,
        prefix + MANIFEST_FILE,
        json.dumps(body, indent=2, sort_keys=True).encode(),
        "application/json",
    )
    return weights


def fetch_adapter(objects: ObjectStore, uri: str, sha256: str, into: Path) -> Path:
    """Download an adapter folder, checking the weights against the registry's sha256."""
    bucket, prefix = parse_s3_uri(uri)
    try:
        objects.get_file(bucket, prefix + WEIGHTS_FILE, into / WEIGHTS_FILE, expected_sha256=sha256)
        objects.get_file(bucket, prefix + CONFIG_FILE, into / CONFIG_FILE)
    except IntegrityError as exc:
        raise AdapterCorrupted(str(exc)) from None
    return into


def adapter_uri(name: str, version: int) -> str:
    return f"s3://{ADAPTERS_BUCKET}/{adapter_prefix(name, version)}"


def save_checkpoint(objects: ObjectStore, job_id: str, step: int, blob: bytes) -> None:
    """Store a checkpoint, then move the `latest` pointer to it (a torn write is never latest)."""
    key = f"{checkpoint_prefix(job_id)}step-{step:08d}.pt"
    ref = objects.put_bytes(ARTIFACTS_BUCKET, key, blob)
    pointer = {"step": step, "key": key, "sha256": ref.sha256}
    objects.put_bytes(ARTIFACTS_BUCKET, checkpoint_prefix(job_id) + LATEST_CHECKPOINT,
                      json.dumps(pointer).encode(), "application/json")  # fmt: skip
    for old in objects.list_keys(ARTIFACTS_BUCKET, checkpoint_prefix(job_id) + "step-"):
        if old != key:  # keep only the newest
            objects.client.remove_object(ARTIFACTS_BUCKET, old)


def load_checkpoint(objects: ObjectStore, job_id: str) -> tuple[int, bytes] | None:
    """The newest checkpoint of a job and its step, or None if it has none."""
    pointer_key = checkpoint_prefix(job_id) + LATEST_CHECKPOINT
    if not objects.exists(ARTIFACTS_BUCKET, pointer_key):
        return None
    pointer = json.loads(objects.get_bytes(ARTIFACTS_BUCKET, pointer_key))
    blob = objects.get_bytes(ARTIFACTS_BUCKET, pointer["key"], expected_sha256=pointer["sha256"])
    return int(pointer["step"]), blob


def drop_checkpoints(objects: ObjectStore, job_id: str) -> int:
    return objects.delete_prefix(ARTIFACTS_BUCKET, checkpoint_prefix(job_id))


def store_model(objects: ObjectStore, folder: Path, job_id: str) -> tuple[str, ObjectRef]:
    """Upload a fully fine-tuned model folder; returns its URI and the weights' reference."""
    prefix = f"models/{job_id}/"
    weights = None
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        ref = objects.put_file(ARTIFACTS_BUCKET, prefix + path.name, path)
        if path.suffix == ".safetensors":
            weights = ref
    assert weights is not None, "save_pretrained wrote no safetensors"
    return f"s3://{ARTIFACTS_BUCKET}/{prefix}", weights


def fetch_model(objects: ObjectStore, uri: str, sha256: str, into: Path) -> Path:
    """Download a fine-tuned model folder; its weights are checked against the registry."""
    bucket, prefix = parse_s3_uri(uri)
    staging = into.with_name(into.name + ".part")
    shutil.rmtree(staging, ignore_errors=True)
    for key in objects.list_keys(bucket, prefix):
        objects.get_file(bucket, key, staging / key[len(prefix) :])
    if weights_digest(staging) != sha256:
        shutil.rmtree(staging, ignore_errors=True)
        raise AdapterCorrupted(f"the stored model at {uri} does not match its recorded sha256")
    shutil.rmtree(into, ignore_errors=True)
    staging.rename(into)  # a complete folder or none
    return into


def weights_digest(folder: Path) -> str:
    """The sha256 `store_model` records: of the (last, by name) safetensors file."""
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return ""
    hasher = hashlib.sha256()
    with weights[-1].open("rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def forget_model(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
