"""What a dataset becomes: documents read from files, chunks cut from documents, problems found."""

from __future__ import annotations

from dataclasses import dataclass, field


class DatasetError(Exception):
    """The dataset as a whole cannot be used; `code` is stable, `message` says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class BadFile(DatasetError):
    """One file of the dataset cannot be read."""

    def __init__(self, source: str, code: str, message: str) -> None:
        super().__init__(code, f"{source}: {message}")
        self.source = source


@dataclass(frozen=True)
class QaPair:
    """A question with its expected answer, for retrieval quality."""

    question: str
    answer: str


@dataclass(frozen=True)
class Document:
    """A unit of text to chunk on its own: a file, a section, a page or a record."""

    source: str
    text: str
    title: str | None = None
    part: str = "0"  # where in the source: record, section or page number


@dataclass
class ParsedFile:
    """Documents read from one file, and any question/answer pairs it carried."""

    source: str
    documents: list[Document] = field(default_factory=list)
    pairs: list[QaPair] = field(default_factory=list)


@dataclass(frozen=True)
class Chunk:
    """A piece of text to embed, with a content-derived id and where it came from."""

    id: str
    text: str
    source: str
    position: int  # index of the chunk within its source
    slot: str  # stable place in the source: "part:index", to tell updates from additions
    title: str | None = None

    def metadata(self) -> dict[str, str | int]:
        meta: dict[str, str | int] = {
            "source": self.source,
            "position": self.position,
            "slot": self.slot,
        }
        if self.title:
            meta["title"] = self.title
        return meta
