"""Adapter names, versions and aliases as people write them, and where an adapter's files live."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BASE = "base"
LATEST = "latest"
ADAPTERS_BUCKET = "lorag-adapters"
ARTIFACTS_BUCKET = "lorag-artifacts"
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
MANIFEST_FILE = "manifest.json"
EVENT_NAMESPACE = uuid.UUID("5b0d7c1e-0a7c-4a53-9d0e-6c6f72616701")


class BadReference(ValueError):
    """A model name that is not `base`, NAME, NAME:VERSION or NAME@ALIAS."""


@dataclass(frozen=True)
class AdapterRef:
    """Which adapter a request or a command means: a fixed version or an alias (default latest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias or LATEST}"


def parse_ref(text: str) -> AdapterRef | None:
    """'base' -> None; 'NAME' -> latest; 'NAME:3' -> version 3; 'NAME@production' -> alias."""
    if text == BASE:
        return None
    name, colon, version = text.partition(":")
    if colon:
        if not version.isdigit() or int(version) < 1:
            raise BadReference(f"{text!r}: the version after ':' must be a positive integer")
        return AdapterRef(_name(name, text), version=int(version))
    name, at, alias = text.partition("@")
    if at:
        return AdapterRef(_name(name, text), alias=_name(alias, text))
    return AdapterRef(_name(name, text), alias=LATEST)


def _name(value: str, text: str) -> str:
    if not NAME.match(value):
        raise BadReference(
            f"{text!r} is not base, NAME, NAME:VERSION or NAME@ALIAS "
            "(names: letters, digits, '.', '_', '-')"
        )
    return value


def adapter_prefix(name: str, version: int) -> str:
    """Object key prefix of an adapter version in the adapters bucket."""
    return f"{name}/v{version}/"


def checkpoint_prefix(job_id: str) -> str:
    return f"checkpoints/{job_id}/"


def created_event_id(name: str, version: int) -> uuid.UUID:
    """The same id for every publication of one version, so a re-publication is a duplicate."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{name}:{version}")
