"""The decode thread's handoff to the event loop: a stream's first text and its end are delivered
at once, the text in between at most once per interval, and whole answers only at the end."""

from __future__ import annotations

import asyncio
import threading

from lorag_lora.serving.handoff import Delta, Done, Inbox

DONE = Done("stop", 3, 4)


def in_thread(work: object) -> None:
    """Run `work` in another thread, as the decode thread does."""
    thread = threading.Thread(target=work)  # type: ignore[arg-type]
    thread.start()
    thread.join()


async def test_first_text_at_once_then_held_until_the_interval_or_a_flush():
    inbox = Inbox(asyncio.get_running_loop(), interval_s=60.0)
    held: list[bool] = []
    in_thread(lambda: held.append(inbox.put(0, Delta("a"))))
    assert held == [False] and await asyncio.wait_for(inbox.take(), 1) == [(0, Delta("a"))]
    waiting = asyncio.ensure_future(inbox.take())
    await asyncio.sleep(0.01)  # the reader waits
    in_thread(lambda: held.extend([inbox.put(0, Delta("b")), inbox.put(0, Delta("c"))]))
    assert held[1:] == [True, True]
    await asyncio.sleep(0.05)
    assert not waiting.done()  # held back: no wake-up of the loop per token
    in_thread(inbox.flush)
    assert await asyncio.wait_for(waiting, 1) == [(0, Delta("b")), (0, Delta("c"))]


async def test_the_end_wakes_the_reader_with_the_text_held_before_it():
    inbox = Inbox(asyncio.get_running_loop(), interval_s=60.0)
    in_thread(lambda: [inbox.put(0, Delta("a")), inbox.put(1, Delta("b"))])
    first = await asyncio.wait_for(inbox.take(), 1)
    in_thread(lambda: [inbox.put(1, Delta("c")), inbox.put(1, DONE)])
    assert first + await asyncio.wait_for(inbox.take(), 1) == [
        (0, Delta("a")), (1, Delta("b")), (1, Delta("c")), (1, DONE),
    ]  # fmt: skip


async def test_a_zero_interval_delivers_every_token():
    inbox = Inbox(asyncio.get_running_loop(), interval_s=0.0)
    for piece in "abc":
        in_thread(lambda piece=piece: inbox.put(0, Delta(piece)))
        assert await asyncio.wait_for(inbox.take(), 1) == [(0, Delta(piece))]


async def test_a_whole_answer_reader_is_woken_once_at_the_end():
    inbox = Inbox(asyncio.get_running_loop(), interval_s=0.0, live=False)
    waiting = asyncio.ensure_future(inbox.take())
    await asyncio.sleep(0.01)  # the reader waits
    in_thread(lambda: [inbox.put(0, Delta("a")), inbox.put(0, Delta("b"))])
    await asyncio.sleep(0.05)
    assert not waiting.done()
    in_thread(lambda: inbox.put(0, DONE))
    assert await asyncio.wait_for(waiting, 1) == [(0, Delta("a")), (0, Delta("b")), (0, DONE)]
