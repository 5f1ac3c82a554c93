"""PDF pages as documents, with parse failures turned into a file problem."""

from __future__ import annotations

import io
import logging
from pathlib import PurePosixPath

from lorag_rag.domain.documents import BadFile, Document, ParsedFile
from lorag_rag.domain.text import nfc


def parse_pdf(source: str, data: bytes) -> ParsedFile:
    """One document per page; PDF_INVALID when pypdf cannot read the file."""
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # it warns per damaged object
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        title = (reader.metadata.title if reader.metadata else None) or PurePosixPath(source).stem
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many unrelated types on damaged files
        raise BadFile(
            source, "PDF_INVALID", f"cannot be parsed as PDF: {type(exc).__name__}: {exc}"
        ) from None
    out = ParsedFile(source)
    for number, text in enumerate(pages, 1):
        if text.strip():
            out.documents.append(Document(source, nfc(text), title=str(title), part=f"p{number}"))
    return out
