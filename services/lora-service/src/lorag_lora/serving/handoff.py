"""Handing generated text from the decode thread to the event loop, in batches.

Every wake-up of the event loop from the decode thread costs a self-pipe write, a loop
iteration and a trip of the GIL to the loop and back; with a small model a decode step is only
a few times that, so waking the loop per token made a stream a third slower than plain
`generate`. An Inbox therefore wakes its reader at once for a request's first text and its end,
and otherwise at most once per `interval_s`: the tokens decoded in between reach the client
together, in one write. A reader that only wants whole answers (`live=False`) is woken once, at
the end. Whatever an Inbox holds back, the decode thread delivers (`flush`) before it does
anything slow (a prefill) or goes idle, so nothing waits longer than one interval and one step.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delta:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    finish_reason: str  # stop | length
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class Failed:
    error: BaseException


Event = Delta | Done | Failed


class Inbox:
    """The events of one request's generations (by index), read on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float = 0.0,
                 live: bool = True) -> None:  # fmt: skip
        self._loop, self.interval_s, self.live = loop, interval_s, live
        self._lock = threading.Lock()
        self._items: list[tuple[int, Event]] = []
        self._waking = False  # a wake-up is on its way to the loop
        self._woken_at = -1e9  # when the reader was last woken (monotonic seconds)
        self._waiter: asyncio.Future[None] | None = None

    def put(self, index: int, event: Event) -> bool:
        """Called from the decode thread; True when the event is held back for `flush`."""
        with self._lock:
            self._items.append((index, event))
            if self._waking:
                return False  # it leaves with the wake-up already on its way
            if isinstance(event, Delta):
                if not self.live:
                    return False  # read at the end
                now = time.monotonic()
                if now - self._woken_at < self.interval_s:
                    return True
                self._woken_at = now
            self._waking = True
        self._loop.call_soon_threadsafe(self._wake)
        return False

    def flush(self) -> None:
        """Called from the decode thread: deliver what is held back now."""
        with self._lock:
            if self._waking or not self._items:
                return
            self._waking, self._woken_at = True, time.monotonic()
        self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._waking = False
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def take(self) -> list[tuple[int, Event]]:
        """Everything that arrived since the last call; waits while there is nothing."""
        while True:
            with self._lock:
                if self._items:
                    items, self._items = self._items, []
                    return items
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None


class Generation:
    """The asynchronous side of one request: its events, and a way to give up its slot."""

    def __init__(self, inbox: Inbox, index: int = 0) -> None:
        self.inbox, self.index = inbox, index
        self.cancelled = False

    def push(self, event: Event) -> bool:
        """Called from the decode thread; True when the event waits for the inbox's flush."""
        return self.inbox.put(self.index, event)

    def cancel(self) -> None:
        """The client went away: the row leaves the batch before the next step."""
        self.cancelled = True

    async def events(self) -> AsyncIterator[Event]:
        """Deltas, then one Done or Failed (for a generation with an inbox of its own)."""
        while True:
            for _, event in await self.inbox.take():
                yield event
                if not isinstance(event, Delta):
                    return
