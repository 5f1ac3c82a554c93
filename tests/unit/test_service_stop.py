"""A service always stops: a worker loop keeps its cancellation even when woken at that moment,
and a stop that overruns LORAG_STOP_TIMEOUT_S says what was stuck and exits 70.

CI once ran a test service that never stopped: its worker loop, cancelled just as the intake
woke it, lost the cancellation inside `asyncio.wait_for` (Python 3.11) and went on claiming the
next tests' jobs."""

import asyncio
import contextlib
import subprocess
import sys
import textwrap
import time

import pytest

from lorag_core.service.deadline import EXIT_STOP_OVERRUN
from lorag_core.service.worker import wait_woken


async def cancelled_as_woken(wait) -> bool:
    """Cancel a waiting loop in the same instant its event is set; True if the loop ended."""
    wake, rounds = asyncio.Event(), 0

    async def loop() -> None:
        nonlocal rounds
        while rounds < 100:
            wake.clear()
            await wait(wake)
            rounds += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)  # waiting now
    wake.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    if not done:  # the loop lost its cancellation and went on
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return bool(done) and task.cancelled() and rounds == 0


async def test_a_loop_cancelled_as_it_is_woken_stops():
    assert await cancelled_as_woken(lambda wake: wait_woken(wake, 5.0))


async def test_the_same_loop_on_asyncio_wait_for_runs_on():
    """Why wait_woken exists: this Python's wait_for drops that cancellation (fixed in 3.12)."""

    async def wait_for(wake: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):  # as the worker loop waited before
            await asyncio.wait_for(wake.wait(), 5.0)

    assert not await cancelled_as_woken(wait_for)


async def test_wait_woken_says_whether_it_was_woken():
    wake = asyncio.Event()
    started = time.monotonic()
    assert await wait_woken(wake, 0.05) is False
    assert time.monotonic() - started >= 0.05
    asyncio.get_running_loop().call_later(0.01, wake.set)
    assert await wait_woken(wake, 5.0) is True


STUCK_SERVICE = textwrap.dedent(
    """
    import asyncio, logging
    from lorag_core.service.deadline import StopDeadline

    async def main():
        logging.basicConfig(level=logging.INFO)
        StopDeadline("stuck-service", 0.5).arm(asyncio.get_running_loop())
        await asyncio.create_task(asyncio.sleep(3600), name="never-ending-job")

    asyncio.run(main())
    """
)


def test_a_stop_that_overruns_its_deadline_exits_70_and_shows_what_was_stuck():
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", STUCK_SERVICE], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == EXIT_STOP_OVERRUN, run.stderr
    assert time.monotonic() - started < 30
    assert "stuck-service did not stop within 0.5 s" in run.stderr
    assert "never-ending-job" in run.stderr  # the asyncio task, with where it waits
    assert "Thread 0x" in run.stderr or "Current thread" in run.stderr  # every thread's stack


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_the_stop_timeout_must_be_positive(monkeypatch, seconds):
    from pydantic import ValidationError

    from lorag_core.settings import Settings

    monkeypatch.setenv("LORAG_STOP_TIMEOUT_S", str(seconds))
    with pytest.raises(ValidationError, match="stop_timeout_s"):
        Settings()
