"""ocsptool.gcpause: the cycle collector paused while a run builds long-lived containers."""

from __future__ import annotations

import gc
import weakref

from ocsptool.gcpause import paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_what_was_made_paused_is_old_and_its_garbage_still_collected() -> None:
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        kept = [[n] for n in range(10_000)]
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
    assert gc.isenabled()
    # Moved to the oldest generation, not left for the next young collection to walk.
    assert gc.get_count()[0] < 100
    assert any(obj is kept[-1] for obj in gc.get_objects(generation=2))
    assert gone() is not None
    gc.collect()
    assert gone() is None
    assert kept[-1] == [9_999]


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
