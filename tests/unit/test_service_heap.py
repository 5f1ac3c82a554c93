"""A started service collects its start-up garbage, then freezes what is left out of the cyclic
collector (`settle_heap`), says how much it froze on /metrics, and collects less often."""

from __future__ import annotations

import gc
import weakref

from lorag_core import metrics
from lorag_core.service.host import GC_THRESHOLDS, settle_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_settle_heap_frees_startup_garbage_then_freezes_the_rest() -> None:
    kept, garbage = Node(), Node()
    gone = weakref.ref(garbage)
    del garbage
    assert id(kept) in {id(o) for o in gc.get_objects()}
    before, thresholds = gc.get_freeze_count(), gc.get_threshold()
    assert thresholds != GC_THRESHOLDS
    try:
        frozen = settle_heap()
        assert gone() is None, "the start-up cycle was collected before the freeze"
        assert frozen == gc.get_freeze_count() > before
        assert id(kept) not in {id(o) for o in gc.get_objects()}, "frozen: no collection walks it"
        assert metrics.GC_FROZEN._value.get() == frozen
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    assert gc.get_freeze_count() == 0
