"""The checkpoint writer: stores off the training thread, newest wins, errors reach the trainer."""

from __future__ import annotations

import threading
import time

import pytest

from lorag_lora.checkpoints import CheckpointWriter


def test_stores_in_order_and_close_waits_for_the_last():
    stored: list[tuple[int, bytes]] = []
    writer = CheckpointWriter(lambda step, blob: stored.append((step, blob)))
    writer.submit(25, b"a")
    writer.close()
    assert stored == [(25, b"a")]


def test_a_checkpoint_waiting_is_replaced_by_a_newer_one():
    started, release = threading.Event(), threading.Event()
    stored: list[int] = []

    def slow(step: int, blob: bytes) -> None:
        started.set()
        release.wait(5)
        stored.append(step)

    writer = CheckpointWriter(slow)
    writer.submit(25, b"a")
    assert started.wait(5)  # 25 is being stored
    writer.submit(50, b"b")  # waits
    writer.submit(75, b"c")  # replaces 50
    release.set()
    writer.close()
    assert stored == [25, 75]
    assert writer.stored == [25, 75]


def test_a_store_error_is_raised_at_the_next_submit():
    stored: list[int] = []
    tried = threading.Event()

    def broken_once(step: int, blob: bytes) -> None:
        if step == 25:
            tried.set()
            raise OSError("object storage is down")
        stored.append(step)

    writer = CheckpointWriter(broken_once)
    writer.submit(25, b"a")
    assert tried.wait(5)  # 25 is taken (a newer checkpoint would replace it while it waits)
    for _ in range(500):  # the error is recorded just after the store raised
        try:
            writer.submit(50, b"b")
        except OSError as exc:
            assert "object storage is down" in str(exc)
            break
        time.sleep(0.01)
    else:
        pytest.fail("the store's error never reached submit")
    writer.submit(75, b"c")  # the error was raised once: the writer goes on
    writer.close()
    assert stored[-1] == 75


def test_close_raises_a_store_error_and_refuses_later_checkpoints():
    def broken(step: int, blob: bytes) -> None:
        raise OSError("no space")

    writer = CheckpointWriter(broken)
    writer.submit(25, b"a")
    with pytest.raises(OSError, match="no space"):
        writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(50, b"b")
