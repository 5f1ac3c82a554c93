"""Small generated plain-text datasets for jobs that must be many and quick."""

from __future__ import annotations

WORDS = ["amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo"]


def notes(seed: int, files: int, sentences: int) -> dict[str, bytes]:
    """Plain-text notes: about one 64-token chunk per two sentences, different for each seed."""
    return {
        f"note-{f}.txt": " ".join(
            f"Note {seed}.{f}.{n}: the {WORDS[(seed + n) % 9]} pump of bay {seed * 11 + n}"
            f" was serviced by team {n % 4} on shift {f}."
            for n in range(sentences)
        ).encode()
        for f in range(files)
    }
