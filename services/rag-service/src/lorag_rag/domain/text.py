"""Turning bytes into clean text: size, binary, line length and encoding checks, then NFC."""

from __future__ import annotations

import unicodedata

from lorag_rag.domain.documents import BadFile

# Bytes that never appear in text (controls other than tab, newlines, form feed, escape).
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27))
BINARY_SHARE = 0.1


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def looks_binary(data: bytes) -> bool:
    """NUL bytes, or many control bytes: not a text file whatever its name says."""
    sample = data[: 64 * 1024]
    if b"\x00" in sample:
        return True
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    return bool(sample) and controls / len(sample) > BINARY_SHARE


def check_size(source: str, data: bytes, max_file_bytes: int) -> None:
    if len(data) > max_file_bytes:
        raise BadFile(
            source,
            "FILE_TOO_LARGE",
            f"{len(data)} bytes is over the limit of {max_file_bytes} (LORAG_RAG_MAX_FILE_BYTES)",
        )


def decode_text(source: str, data: bytes, max_line_bytes: int) -> str:
    """UTF-8 text in NFC, or a BadFile that says why not."""
    if looks_binary(data):
        raise BadFile(source, "FILE_BINARY", "holds binary content, not text")
    longest = max((len(line) for line in data.split(b"\n")), default=0)
    if longest > max_line_bytes:
        raise BadFile(
            source,
            "FILE_LINE_TOO_LONG",
            f"a line of {longest} bytes is over the limit of {max_line_bytes} "
            "(LORAG_RAG_MAX_LINE_BYTES); split the text into lines or records",
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadFile(
            source,
            "FILE_ENCODING_INVALID",
            f"not UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r}); "
            "convert it to UTF-8",
        ) from None
    return nfc(text)
