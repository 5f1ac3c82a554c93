"""Reading each supported format into documents: JSONL, CSV, Markdown, text, HTML and PDF."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from lorag_rag.domain.documents import BadFile, Document, ParsedFile, QaPair
from lorag_rag.domain.text import check_size, decode_text, nfc

FORMATS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".md": "md", ".markdown": "md",
    ".txt": "txt", ".text": "txt", ".html": "html", ".htm": "html", ".pdf": "pdf",
}  # fmt: skip
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ReadOptions:
    """Which fields hold the text and the question/answer pairs, and the size limits."""

    text_field: str | None = None
    question_field: str = "question"
    answer_field: str = "answer"
    max_file_bytes: int = 100 * 1024 * 1024
    max_line_bytes: int = 1024 * 1024


def format_of(source: str, hint: str | None = None) -> str:
    """The format by hint or suffix; BadFile for anything unsupported."""
    fmt = (hint or "").lower().lstrip(".") or FORMATS.get(PurePosixPath(source).suffix.lower())
    if fmt not in set(FORMATS.values()):
        raise BadFile(
            source,
            "FORMAT_UNSUPPORTED",
            f"format {fmt or PurePosixPath(source).suffix or '(none)'!r} is not supported; "
            "use jsonl, csv, md, txt, html or pdf",
        )
    return fmt


def parse_file(source: str, data: bytes, opts: ReadOptions, hint: str | None = None) -> ParsedFile:
    """Validate one file and read it into documents; BadFile with a specific code if it cannot."""
    fmt = format_of(source, hint)
    check_size(source, data, opts.max_file_bytes)
    if fmt == "pdf":
        from lorag_rag.domain.pdf import parse_pdf

        parsed = parse_pdf(source, data)
    else:
        text = decode_text(source, data, opts.max_line_bytes)
        parsed = {
            "jsonl": _jsonl, "csv": _csv, "md": _markdown, "txt": _plain, "html": _html,
        }[fmt](source, text, opts)  # fmt: skip
    if not any(doc.text.strip() for doc in parsed.documents):
        raise BadFile(source, "FILE_EMPTY", "holds no text")
    return parsed


def _record(source: str, where: str, row: dict, opts: ReadOptions, out: ParsedFile) -> bool:
    question, answer = row.get(opts.question_field), row.get(opts.answer_field)
    pair = isinstance(question, str) and isinstance(answer, str) and question and answer
    field = opts.text_field or "text"
    text = row.get(field)
    if not isinstance(text, str):
        if not pair or opts.text_field:
            return False
        text = f"{question}\n{answer}"
    out.documents.append(Document(source, nfc(text), part=where))
    if pair:
        out.pairs.append(QaPair(nfc(str(question)), nfc(str(answer))))
    return True


def _jsonl(source: str, text: str, opts: ReadOptions) -> ParsedFile:
    out = ParsedFile(source)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadFile(source, "JSONL_INVALID", f"line {number}: {exc.msg}") from None
        if not isinstance(row, dict) or not _record(source, str(number), row, opts, out):
            wanted = opts.text_field or f"text, or {opts.question_field}/{opts.answer_field}"
            raise BadFile(
                source, "JSONL_FIELD_MISSING", f"line {number} has no string field {wanted}"
            )
    return out


def _csv(source: str, text: str, opts: ReadOptions) -> ParsedFile:
    out = ParsedFile(source)
    reader = csv.DictReader(io.StringIO(text))
    columns = reader.fieldnames or []
    has_pair = opts.question_field in columns and opts.answer_field in columns
    if (opts.text_field or "text") not in columns and (opts.text_field or not has_pair):
        raise BadFile(
            source,
            "CSV_COLUMN_MISSING",
            f"no column {opts.text_field or 'text'!r} (columns: {', '.join(columns) or 'none'}); "
            "name the text column with --param text_field=COLUMN",
        )
    for number, row in enumerate(reader, 2):
        _record(source, str(number), row, opts, out)
    return out


def _markdown(source: str, text: str, opts: ReadOptions) -> ParsedFile:
    """One document per heading section, titled by its heading."""
    out = ParsedFile(source)
    starts = [(m.start(), m.group(2)) for m in HEADING.finditer(text)]
    if not starts or starts[0][0] > 0:
        starts.insert(0, (0, PurePosixPath(source).stem))
    for index, (start, title) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(text)
        if text[start:end].strip():
            out.documents.append(Document(source, text[start:end], title=title, part=str(index)))
    return out


def _plain(source: str, text: str, opts: ReadOptions) -> ParsedFile:
    return ParsedFile(source, [Document(source, text, title=PurePosixPath(source).stem)])


def _html(source: str, text: str, opts: ReadOptions) -> ParsedFile:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    heading = soup.title or soup.find("h1")
    title = heading.get_text(strip=True) if heading else PurePosixPath(source).stem
    body = nfc(soup.get_text(separator="\n"))
    return ParsedFile(source, [Document(source, body, title=title)])
