"""Checkpoints leave the training thread: one writer thread stores them, the newest wins.

Decisions: storing a checkpoint (a few S3 round trips) used to run inside the training loop, so
every checkpoint stalled training. The writer takes the snapshot bytes and stores them in the
background; a checkpoint handed over while another is still being stored replaces the one
waiting (only the newest is ever resumed from, so an older one waiting is worth nothing). A
storing error is raised in the training thread at the next hand-over or at `close`, so a job
whose checkpoints cannot be kept still fails as before. `close` waits for the last store, so no
checkpoint lands after the job drops its checkpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Store = Callable[[int, bytes], None]


class CheckpointWriter:
    """Stores (step, blob) pairs on its own thread, newest first, one at a time."""

    def __init__(self, store: Store, name: str = "lora-checkpoints"):
        self._store = store
        self._cond = threading.Condition()
        self._waiting: tuple[int, bytes] | None = None
        self._closed = False
        self._error: BaseException | None = None
        self.stored: list[int] = []  # steps stored, in order (for tests and logs)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, step: int, blob: bytes) -> None:
        """Hand a checkpoint over; raises the error of an earlier store, if one failed."""
        with self._cond:
            self._raise_error()
            if self._closed:
                raise RuntimeError("the checkpoint writer is closed")
            self._waiting = (step, blob)
            self._cond.notify_all()

    def close(self) -> None:
        """Store what is waiting, stop the thread; raises a store's error, if one failed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._waiting is None and not self._closed:
                    self._cond.wait()
                if self._waiting is None:  # closed, nothing left
                    return
                (step, blob), self._waiting = self._waiting, None
            try:
                self._store(step, blob)
                self.stored.append(step)
            except BaseException as exc:  # handed to the training thread
                with self._cond:
                    self._error = exc
