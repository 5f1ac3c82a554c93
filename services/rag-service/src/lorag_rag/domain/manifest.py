"""The file-level manifest: which files of a KB's live version an ingest may skip unread."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

# Bump when chunking or parsing changes what the same bytes become: every manifest row is stale.
INGEST_LOGIC_VERSION = 1


@dataclass(frozen=True)
class FileEntry:
    """One file of a live version: its content digest, the settings that read it, its counts."""

    source: str
    digest: str
    settings: str
    chunks: int
    pairs: int = 0
    tag: str | None = None  # the object store's tag of the bytes read (DatasetFile.tag)


def content_digest(data: bytes) -> str:
    """sha256 of a file's bytes: the same bytes are the same file, whatever its timestamps."""
    return hashlib.sha256(data).hexdigest()


def settings_digest(**settings: object) -> str:
    """Digest of every setting that shapes a file's chunks or vectors; a change invalidates it."""
    text = json.dumps({"logic": INGEST_LOGIC_VERSION, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def unchanged(entry: FileEntry | None, digest: str, settings: str) -> bool:
    """Whether a file read now is the one the live version holds, read the same way."""
    return entry is not None and entry.digest == digest and entry.settings == settings


def listed_unchanged(entry: FileEntry | None, tag: str | None, settings: str) -> bool:
    """Whether the listing alone shows the live version's file, read the same way: the object
    store's tag of its bytes is the one recorded when it was read. A file that carried
    question/answer pairs is read all the same (the pairs are not kept)."""
    return (
        entry is not None and tag is not None and entry.tag == tag
        and entry.settings == settings and not entry.pairs
    )  # fmt: skip
