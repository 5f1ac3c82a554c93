"""The decode thread runs with its own torch thread count; threads started later keep theirs."""

from __future__ import annotations

import threading

import pytest
import torch

from lorag_lora.config import LoraSettings
from lorag_lora.serving import scheduler
from lorag_lora.serving.scheduler import Scheduler, own_torch_threads


def _in_new_thread(fn):  # type: ignore[no-untyped-def]
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


@pytest.fixture
def two_threads():  # type: ignore[no-untyped-def]
    """torch's default of 2 for this process's threads (other tests may have set 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def test_a_thread_keeps_its_own_count_and_later_threads_start_with_the_default(two_threads):
    default = _in_new_thread(torch.get_num_threads)
    assert default == two_threads

    def own_one() -> int:
        own_torch_threads(1)
        return torch.get_num_threads()

    assert _in_new_thread(own_one) == 1
    assert _in_new_thread(torch.get_num_threads) == default  # training's threads: untouched
    assert torch.get_num_threads() == default  # nor this one


def test_the_scheduler_sets_the_count_on_its_decode_thread(monkeypatch: pytest.MonkeyPatch):
    called: list[tuple[int, str]] = []

    def record(n: int) -> None:
        called.append((n, threading.current_thread().name))

    monkeypatch.setattr(scheduler, "own_torch_threads", record)
    Scheduler(4, 4, torch.device("cpu"), threads=1).stop()
    Scheduler(4, 4, torch.device("cpu")).stop()  # None: torch's default
    assert called == [(1, "lorag-decode")]


def test_the_setting_defaults_to_one_and_refuses_zero():
    assert LoraSettings().decode_threads == 1
    with pytest.raises(ValueError, match="decode_threads"):
        LoraSettings(decode_threads=0)
