"""The heavy things the rag-service's runner and queries share, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from lorag_rag.adapters.chroma_store import ChromaStore
from lorag_rag.adapters.datasets import DatasetReader
from lorag_rag.adapters.embedder import EmbedderCache, QueryThreads
from lorag_rag.config import LlmSettings, RagSettings
from lorag_rag.kb_rows import KbRows


@dataclass
class RagDeps:
    settings: RagSettings
    embedders: EmbedderCache
    store: ChromaStore
    reader: DatasetReader | None = None  # only the worker reads datasets
    llm: LlmSettings | None = None
    queries: QueryThreads = field(default_factory=QueryThreads)  # one-question work
    kb_rows: KbRows = field(default_factory=KbRows)  # live KBs' rows, for the API's lookups
