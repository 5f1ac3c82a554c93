"""Reading a job's datasets into documents, file by file, with each bad file reported."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import PurePosixPath

from lorag_core.contracts import DatasetRef
from lorag_rag.adapters.datasets import DatasetFile, DatasetReader
from lorag_rag.domain.documents import BadFile, DatasetError, Document, QaPair
from lorag_rag.domain.formats import ReadOptions, parse_file
from lorag_rag.domain.manifest import (
    FileEntry,
    content_digest,
    listed_unchanged,
    settings_digest,
    unchanged,
)
from lorag_rag.domain.text import decode_text


@dataclass
class LoadedDataset:
    documents: list[Document] = field(default_factory=list)
    pairs: list[QaPair] = field(default_factory=list)
    sources: int = 0
    bad_files: list[BadFile] = field(default_factory=list)
    files: dict[str, FileEntry] = field(default_factory=dict)  # the good files, for the manifest
    kept: set[str] = field(default_factory=set)  # unchanged since the live version: not chunked
    unread: int = 0  # of the kept files, those the listing showed unchanged: not even read

    def has_text(self) -> bool:
        return bool(self.documents or self.kept)


def eval_uri(eval_file: str, first_dataset: str) -> str:
    """An eval file is a URI, an absolute path, or a name inside the (first) dataset."""
    if "://" in eval_file or eval_file.startswith("/"):
        return eval_file
    return first_dataset.rstrip("/") + "/" + eval_file.lstrip("/")


def list_dataset(reader: DatasetReader, refs: tuple[DatasetRef, ...], skip: str | None) -> list:
    """(file, format hint) for every file of every dataset, except the eval file."""
    found = []
    for ref in refs:
        for file in reader.list_files(ref.uri):
            if skip is not None and _same(file, skip, reader):
                continue
            found.append((file, ref.format))
    return found


def _same(file: DatasetFile, uri: str, reader: DatasetReader) -> bool:
    return reader.locate(uri) == file.location


# Files read ahead of the one being parsed: over a network each read from object storage is a
# round trip that mostly waits. (On one host the reads are CPU-bound instead: 407 small files took
# 0.51 s one by one and 0.44-0.61 s eight at a time.) At most this many files are held at once,
# each up to LORAG_RAG_MAX_FILE_BYTES.
READ_AHEAD = 8


def read_one(reader: DatasetReader, file: DatasetFile) -> bytes | BadFile:
    """The file's bytes, or why it cannot be read."""
    try:
        return reader.read(file)
    except BadFile as bad:
        return bad


async def read_in_order(
    reader: DatasetReader, files: Sequence[DatasetFile], depth: int = READ_AHEAD
) -> AsyncGenerator[bytes | BadFile]:
    """Each file's `read_one`, in order, with up to `depth` reads in flight on threads.

    Close it (`contextlib.aclosing`) when leaving early: reads not started are dropped, and
    those running end on their threads without holding up the event loop.
    """
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(depth, thread_name_prefix="rag-read")
    pending: deque[asyncio.Future[bytes | BadFile]] = deque()
    queued = iter(files)

    def read_next(count: int) -> None:
        for file in islice(queued, count):
            pending.append(loop.run_in_executor(pool, read_one, reader, file))

    try:
        read_next(depth)
        while pending:
            data = await pending.popleft()
            read_next(1)  # before handing it on: `depth` reads run while the caller parses
            yield data
    finally:
        for read in pending:
            read.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def keep_listed(
    file: DatasetFile, hint: str | None, out: LoadedDataset, manifest: dict[str, FileEntry],
    settings: str,
) -> bool:  # fmt: skip
    """Keep the file unread when the listing shows the live version's bytes (same tag, same
    settings): True if kept."""
    known = manifest.get(file.name)
    if not listed_unchanged(known, file.tag, file_settings(settings, hint)):
        return False
    assert known is not None
    _keep(out, known)
    out.unread += 1
    return True


def parse_one(
    file: DatasetFile, data: bytes | BadFile, hint: str | None, opts: ReadOptions,
    out: LoadedDataset, manifest: dict[str, FileEntry], settings: str,
) -> None:  # fmt: skip
    """One file's bytes (`read_one`'s answer) into `out`; a bad file is recorded, not raised.

    A file the live version holds with the same bytes and settings is kept, not parsed (or, when
    it carried question/answer pairs, parsed for those alone): its chunks are never tokenised.
    """
    if isinstance(data, BadFile):
        out.bad_files.append(data)
        return
    digest, settings = content_digest(data), file_settings(settings, hint)
    known = manifest.get(file.name)
    if unchanged(known, digest, settings):
        assert known is not None
        _keep(out, replace(known, tag=file.tag))  # the tag these bytes have now
        if known.pairs:
            out.pairs.extend(parse_file(file.name, data, opts, hint).pairs)
        return
    try:
        parsed = parse_file(file.name, data, opts, hint)
    except BadFile as bad:
        out.bad_files.append(bad)
        return
    out.documents.extend(parsed.documents)
    out.pairs.extend(parsed.pairs)
    out.files[file.name] = FileEntry(file.name, digest, settings, 0, len(parsed.pairs), file.tag)
    out.sources += 1


def file_settings(settings: str, hint: str | None) -> str:
    """The settings digest of one file: a format hint reads the same bytes differently."""
    return settings_digest(base=settings, hint=hint) if hint else settings


def _keep(out: LoadedDataset, entry: FileEntry) -> None:
    out.kept.add(entry.source)
    out.files[entry.source] = entry
    out.sources += 1


def read_eval_pairs(reader: DatasetReader, uri: str, opts: ReadOptions) -> list[QaPair]:
    """The {question, answer} lines of an eval JSONL; EVAL_FILE_INVALID if it has none."""
    files = reader.list_files(uri)
    name = PurePosixPath(files[0].name).name
    try:
        text = decode_text(name, reader.read(files[0]), opts.max_line_bytes)
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        pairs = [QaPair(str(r[opts.question_field]), str(r[opts.answer_field])) for r in rows]
    except (BadFile, ValueError, KeyError, TypeError) as exc:
        raise DatasetError("EVAL_FILE_INVALID", f"{uri}: {exc}") from None
    if not pairs:
        raise DatasetError("EVAL_FILE_INVALID", f"{uri} holds no question/answer pairs")
    return pairs
