"""Where a process's threads spent a stretch of wall time: running, waiting for a core, or
neither (blocked: a lock such as the GIL, a barrier, I/O, sleep), from the kernel's schedstat."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Share:
    """One thread's share of the wall time: each of run + runqueue + blocked is in [0, 1]."""

    thread: str
    run: float
    runqueue: float

    @property
    def blocked(self) -> float:
        return max(0.0, 1.0 - self.run - self.runqueue)

    def __str__(self) -> str:
        return (f"{self.thread:<24} ran {self.run:.2f}, waited for a core {self.runqueue:.2f}, "
                f"blocked {self.blocked:.2f}")  # fmt: skip


def snapshot(pid: int) -> dict[str, tuple[float, float]]:
    """Each live thread's (run, runqueue) seconds so far, keyed "name[tid]"."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            run, wait, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        out[f"{name}[{tid}]"] = (int(run) / 1e9, int(wait) / 1e9)
    return out


def busiest(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]],
    seconds: float, top: int = 4,
) -> list[Share]:  # fmt: skip
    """The `top` threads that ran most between two snapshots `seconds` apart."""
    shares = []
    for thread, (run, wait) in after.items():
        run0, wait0 = before.get(thread, (0.0, 0.0))
        shares.append(Share(thread, (run - run0) / seconds, (wait - wait0) / seconds))
    return sorted(shares, key=lambda s: s.run, reverse=True)[:top]


class Watch:
    """Snapshots of a process every `every` seconds while in the block, so that threads which
    start and end inside it (a job's pipeline threads) are counted too: `busiest(seconds)`."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every = pid, every
        self._first: dict[str, tuple[float, float]] = {}
        self._latest: dict[str, tuple[float, float]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Watch:
        self._first = snapshot(self.pid)
        self._latest = dict(self._first)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._latest.update(snapshot(self.pid))

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self._latest.update(snapshot(self.pid))

    def busiest(self, seconds: float, top: int = 4) -> list[Share]:
        return busiest(self._first, self._latest, seconds, top)
