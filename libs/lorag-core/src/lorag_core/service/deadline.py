"""A bound on a service's graceful stop: past it, say what is stuck and exit.

A stop waits for the workers to hand their jobs back, the in-flight messages to finish and the
consumers to leave their groups. Something that never ends (a task that lost its cancellation)
would keep the process alive for good: still a member of its groups, still claiming jobs.
Kubernetes kills a pod after its grace period without a word; this says first what was stuck.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import sys
import threading
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)
EXIT_STOP_OVERRUN = 70  # EX_SOFTWARE: the process could not stop by itself
TASK_DUMP_WAIT_S = 2.0  # for the event loop to list its tasks, if it still runs at all


class StopDeadline:
    """Once armed, ends the process `seconds` later unless it has exited by then."""

    def __init__(self, service: str, seconds: float) -> None:
        self.service, self.seconds = service, seconds
        self._timer: threading.Timer | None = None

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.seconds, self._overrun, args=(loop,))
            self._timer.daemon = True  # the process exiting in time ends it
            self._timer.start()

    def _overrun(self, loop: asyncio.AbstractEventLoop) -> None:
        log.error(
            "%s did not stop within %g s of being asked to (LORAG_STOP_TIMEOUT_S): its "
            "unfinished asyncio tasks and its threads' stacks follow; exiting %d",
            self.service, self.seconds, EXIT_STOP_OVERRUN,
        )  # fmt: skip
        listed = threading.Event()

        def list_tasks() -> None:  # on the loop's own thread: tasks are not thread-safe
            try:
                log.error("unfinished tasks:\n%s", describe_tasks(asyncio.all_tasks(loop)))
            finally:
                listed.set()

        try:
            loop.call_soon_threadsafe(list_tasks)
            listed.wait(TASK_DUMP_WAIT_S)
        except RuntimeError:  # the loop is closed: only the threads are left to show
            pass
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_STOP_OVERRUN)


def describe_tasks(tasks: set[asyncio.Task[Any]]) -> str:
    """Each unfinished task's name and the chain of awaits it is suspended in, innermost last
    (`Task.print_stack` shows only a task's outermost coroutine)."""
    lines = []
    for task in sorted(tasks, key=lambda t: t.get_name()):
        if task.done():
            continue
        lines.append(f"task {task.get_name()}:")
        for frame in await_chain(task.get_coro()):
            code = frame.f_code
            lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_qualname}")
    return "\n".join(lines) or "(none)"


def await_chain(coro: Any) -> list[FrameType]:
    """The frames of a coroutine and of everything it awaits in turn, while they are Python's."""
    frames = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames
