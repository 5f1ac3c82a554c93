"""What an ingest changes in a knowledge base: added, updated, deleted and unchanged chunks."""

from __future__ import annotations

from dataclasses import dataclass

from lorag_rag.domain.documents import Chunk


@dataclass(frozen=True)
class StoredChunk:
    """A chunk already in the store, with the knowledge-base version that wrote it."""

    id: str
    source: str
    slot: str
    version: int


@dataclass(frozen=True)
class IngestPlan:
    """The chunks to embed, to keep and to delete, and the counts people see."""

    to_embed: list[Chunk]  # new content, not yet in the store
    resumed: int  # new content already stored by an interrupted attempt: not embedded again
    to_delete: list[str]  # committed ids gone from the dataset, and leftovers of failed attempts
    added: int
    updated: int
    deleted: int
    unchanged: int  # includes the chunks of kept files
    kept: int = 0  # chunks of files kept unread (unchanged since the live version)


def plan_ingest(
    chunks: list[Chunk], stored: list[StoredChunk], live_version: int,
    kept: frozenset[str] | set[str] = frozenset(),
) -> IngestPlan:  # fmt: skip
    """Compare the dataset's chunks with the committed version; a changed slot is an update.

    `kept` names sources left unread because they are unchanged: their committed chunks stay.
    """
    held = sum(1 for s in stored if s.version <= live_version and s.source in kept)
    committed = {s.id: s for s in stored if s.version <= live_version and s.source not in kept}
    pending = {s.id for s in stored if s.version > live_version}
    wanted = {c.id for c in chunks}
    fresh = [c for c in chunks if c.id not in committed]
    gone = [s for s in committed.values() if s.id not in wanted]
    gone_slots = {(s.source, s.slot) for s in gone}
    updated = sum(1 for c in fresh if (c.source, c.slot) in gone_slots)
    return IngestPlan(
        to_embed=[c for c in fresh if c.id not in pending],
        resumed=sum(1 for c in fresh if c.id in pending),
        to_delete=[s.id for s in gone] + sorted(pending - wanted),
        added=len(fresh) - updated,
        updated=updated,
        deleted=len(gone) - updated,
        unchanged=len(chunks) - len(fresh) + held,
        kept=held,
    )
